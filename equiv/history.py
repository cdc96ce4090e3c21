"""reports/history.jsonl: one line per nightly run of a route, and the rules that call a change a regression.

Appending is the only write: a line is written whole, flushed and fsynced, and starts on a fresh line
even when the file ends in a torn write (a job killed mid-append). Reading skips a line that does not
parse, with a warning naming it, so one bad night never hides the others.

Regression rules (per prompt-type, against the route's previous run) are pure functions:
- verdict:  it was GO and is not GO now (the route would no longer qualify);
- quality:  the estimate dropped by more than the margin AND the two intervals do not overlap
            (a drop the bootstrap cannot explain as noise);
- cost:     the candidate's cost per request rose by more than `cost_regression_share`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equiv.schema import Verdict
from equiv.store import utc_now

HISTORY_FILE = "history.jsonl"
HISTORY_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Regression:
    route: str
    prompt_type: str
    kind: str  # "verdict" | "quality" | "cost"
    message: str
    previous_run_id: str | None = None

    def __str__(self) -> str:
        since = f" (since run {self.previous_run_id})" if self.previous_run_id else ""
        return f"{self.route} / {self.prompt_type}: {self.message}{since}"


# ---------------------------------------------------------------------------------------------
# entries


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def history_entry(route: str, verdict: Verdict, *, run_dir: Path | None = None, since: str | None = None,
                  timestamp: str | None = None, regressions: Iterable[Regression] = ()) -> dict[str, Any]:
    """The history line of one route's run. Per-type keys match what report/html.py's trend chart reads."""
    when = timestamp or utc_now()
    types: dict[str, Any] = {}
    for tv in verdict.prompt_types:
        q, lc, cost = tv.quality_diff, tv.lc_quality_diff, tv.cost
        types[tv.prompt_type] = {
            "verdict": tv.verdict,
            "n": tv.n,
            "n_failed": tv.n_failed,
            "estimate": q.estimate if q else None,
            "ci_low": q.ci_low if q else None,
            "ci_high": q.ci_high if q else None,
            "lc_estimate": lc.estimate if lc else None,
            "lc_ci_low": lc.ci_low if lc else None,
            "lc_ci_high": lc.ci_high if lc else None,
            "baseline_usd_per_request": cost.baseline_usd_per_request if cost else None,
            "candidate_usd_per_request": cost.candidate_usd_per_request if cost else None,
            "saving": cost.saving.estimate if cost else None,
            "saving_ci_low": cost.saving.ci_low if cost else None,
            "saving_ci_high": cost.saving.ci_high if cost else None,
            "monthly_saving_usd": cost.monthly_saving_usd if cost else None,
        }
    entry: dict[str, Any] = {
        "schema_version": HISTORY_SCHEMA_VERSION,
        "run_id": verdict.run_id,
        "route": route,
        "timestamp": when,
        "decided_at": when,
        "since": since,
        "baseline": verdict.baseline,
        "candidate": verdict.candidate,
        "judge": verdict.judge,
        "margin": verdict.margin,
        "alpha": verdict.alpha,
        "verdict": verdict.verdict,
        "eval_cost_usd": verdict.eval_cost_usd,
        "prompt_types": types,
        "regressions": [str(r) for r in regressions],
    }
    if run_dir is not None:
        entry["run_dir"] = str(run_dir)
    return entry


# ---------------------------------------------------------------------------------------------
# file


def read_history(path: Path, route: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(entries in file order, warnings). Lines that do not parse are skipped and named in a warning."""
    if not path.is_file():
        return [], []
    entries: list[dict[str, Any]] = []
    warnings: list[str] = []
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            last = i == len(lines) or (i == len(lines) - 1 and not lines[-1])
            what = "truncated or corrupted last line" if last else "corrupted line"
            warnings.append(f"{path}:{i}: {what} skipped (not a JSON object)")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("route"), str) \
                or not isinstance(entry.get("prompt_types"), dict):
            warnings.append(f"{path}:{i}: not a history entry (needs route and prompt_types); skipped")
            continue
        if route is None or entry["route"] == route:
            entries.append(entry)
    return entries, warnings


def append_history(path: Path, entry: Mapping[str, Any]) -> None:
    """Append one line; if the file ends mid-line (a torn write), start on a fresh line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    with open(path, "ab+") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                line = b"\n" + line
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def last_entry(entries: list[dict[str, Any]], route: str) -> dict[str, Any] | None:
    for entry in reversed(entries):
        if entry.get("route") == route:
            return entry
    return None


# ---------------------------------------------------------------------------------------------
# regression rules (pure)


def find_regressions(previous: Mapping[str, Any] | None, current: Mapping[str, Any], *, margin: float,
                     cost_share: float) -> list[Regression]:
    """What got worse in `current` (a history entry) since `previous` (the route's last entry)."""
    if not previous:
        return []
    route = str(current.get("route", ""))
    prev_id = previous.get("run_id")
    prev_types = previous.get("prompt_types") or {}
    cur_types = current.get("prompt_types") or {}
    out: list[Regression] = []
    for name, cur in cur_types.items():
        prev = prev_types.get(name)
        if not isinstance(prev, Mapping) or not isinstance(cur, Mapping):
            continue

        def add(kind: str, message: str, name: str = name) -> None:
            out.append(Regression(route, name, kind, message, str(prev_id) if prev_id else None))

        if prev.get("verdict") == "GO" and cur.get("verdict") != "GO":
            add("verdict", f"was GO, now {cur.get('verdict')}")
        est, lo, hi = (_finite(cur.get(k)) for k in ("estimate", "ci_low", "ci_high"))
        p_est, p_lo, p_hi = (_finite(prev.get(k)) for k in ("estimate", "ci_low", "ci_high"))
        if est is not None and p_est is not None and hi is not None and p_lo is not None \
                and p_est - est > margin and hi < p_lo:
            add("quality", f"quality estimate dropped {p_est:+.3f} -> {est:+.3f} (more than the margin {margin:g}; "
                           f"intervals [{p_lo:+.3f}, {p_hi if p_hi is not None else float('nan'):+.3f}] and "
                           f"[{lo if lo is not None else float('nan'):+.3f}, {hi:+.3f}] do not overlap)")
        c_now = _finite(cur.get("candidate_usd_per_request"))
        c_before = _finite(prev.get("candidate_usd_per_request"))
        if c_now is not None and c_before is not None and c_before > 0 and c_now > c_before * (1 + cost_share):
            add("cost", f"candidate cost per request up {c_now / c_before - 1:.0%} (${c_before:.6g} -> ${c_now:.6g}; "
                        f"allowed {cost_share:.0%})")
    return out


def vanished_types(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Prompt-types that were GO last time and were not measured now (no traffic in the window)."""
    if not previous:
        return []
    prev_types = previous.get("prompt_types") or {}
    cur_types = current.get("prompt_types") or {}
    return sorted(t for t, e in prev_types.items()
                  if isinstance(e, Mapping) and e.get("verdict") == "GO" and t not in cur_types)


# ---------------------------------------------------------------------------------------------
# summary.md of a nightly run


def nightly_summary(done: list[tuple[str, dict[str, Any], Path]], regressions: list[Regression],
                    failed: list[str], aborted: str | None, since: str) -> str:
    """Regressions first (what someone must act on), then each route's trend row and its own summary.md."""
    from equiv.report.markdown import fmt_pct, fmt_signed, md_text  # noqa: PLC0415

    status = "ABORTED" if aborted else f"{len(regressions)} regression(s)" if regressions else "no regression"
    lines = [f"# equiv nightly: {status}", "", f"Traffic since {md_text(since, 60)}.", ""]
    if aborted:
        lines += [f"Stopped early: {md_text(aborted)}.", ""]
    if regressions:
        lines += ["**Regressions**", ""]
        lines += [f"- {md_text(str(r), 400)}" for r in regressions]
        lines.append("")
    if failed:
        lines += ["**Routes not run**", ""] + [f"- {md_text(f, 400)}" for f in failed] + [""]
    if done:
        lines += ["| route | prompt-type | verdict | quality diff [CI] | saving | candidate $/request |",
                  "|---|---|:---:|---:|---:|---:|"]
        for route, entry, _run_dir in done:
            for t, e in (entry.get("prompt_types") or {}).items():
                est, lo, hi = e.get("estimate"), e.get("ci_low"), e.get("ci_high")
                q = f"{fmt_signed(est)} [{fmt_signed(lo)}, {fmt_signed(hi)}]"
                cost = e.get("candidate_usd_per_request")
                lines.append(f"| {md_text(route, 80)} | {md_text(t, 80)} | **{md_text(e.get('verdict'), 20)}** | "
                             f"{q} | {fmt_pct(e.get('saving'))} | {'—' if cost is None else f'${cost:.6g}'} |")
        lines.append("")
    for route, _entry, run_dir in done:
        part = Path(run_dir) / "summary.md"
        if part.is_file():
            lines += [f"### route {md_text(route, 80)}", "", part.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines).rstrip() + "\n"
