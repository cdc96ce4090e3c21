"""reports/history.jsonl (one line per nightly run of a route), what a nightly run is compared with, and the
rules that call a change a regression (SPEC "Nightly regression and fallback").

Appending is the only write: a line is written whole, flushed and fsynced, and starts on a fresh line
even when the file ends in a torn write (a job killed mid-append). Reading skips a line that does not
parse, with a warning naming it, so one bad night never hides the others.

What is watched. A prompt-type is live when the route's reference says GO: its decision in routing.json
(the run that qualified it), or, for a route that has no routing.json entry, the first nightly run in which
the type was GO. Only live types can regress; a type that was never GO routes to the baseline anyway.

The rules, per live prompt-type (pure: `assess`):
- regression "no_go":        tonight's verdict is NO_GO;
- regression "quality_drop": tonight's quality is lower than the reference run's, and the two-run
                              difference is significant at alpha (equiv/stats/regression.py: both runs'
                              bootstrap draws, the p-value adjusted for the reference's selection, the
                              route's `correction` across its types);
- regression "cost_rise":    the candidate's cost relative to the baseline's on the same traffic (the
                              candidate's share of the baseline's cost, 1 - saving) rose by more than
                              `cost_regression_share` (per-request cost when no baseline cost is known);
- warning "inconclusive":    GO became INCONCLUSIVE (an unchanged route does this on about one night in
                              five at 80% power: it is reported, never an alarm);
- warning "not_rechecked":   the type had no traffic tonight;
- warning "not_tested":      the quality drop could not be tested (the reference run is not found).

Each history line records per type what was found (`prompt_types[t]["nightly"]`: status, kinds, the two
estimates, the difference, its bound and p-value, the level, with both run ids), and the route-level
`regressions` (strings, as before) and `warnings`.

A nightly state file (OUT/nightly-state.json) remembers each route's night while it runs: a night killed
before it is in the history is resumed by the next `equiv nightly` with the same --since (same window
start, so the same run key and run directory) instead of being bought again.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from equiv.schema import Verdict
from equiv.store import utc_now, write_json_atomic

if TYPE_CHECKING:
    from equiv.config import Settings
    from equiv.schema import Pair
    from equiv.stats.regression import DropTest

HISTORY_FILE = "history.jsonl"
HISTORY_SCHEMA_VERSION = 1
NIGHT_STATE_FILE = "nightly-state.json"
MAX_RESUME_AGE = timedelta(hours=24)

REGRESSION_KINDS = ("no_go", "quality_drop", "cost_rise")
WARNING_KINDS = ("inconclusive", "not_rechecked", "not_tested")


@dataclass(frozen=True)
class Finding:
    """One thing a nightly run found for a prompt-type: a regression (exit 1) or a warning (exit 0)."""

    route: str
    prompt_type: str
    kind: str  # one of REGRESSION_KINDS or WARNING_KINDS
    message: str
    previous_run_id: str | None = None  # the reference run

    @property
    def is_regression(self) -> bool:
        return self.kind in REGRESSION_KINDS

    def __str__(self) -> str:
        since = f" (since run {self.previous_run_id})" if self.previous_run_id else ""
        return f"{self.route} / {self.prompt_type}: {self.message}{since}"


Regression = Finding  # the name older callers import


# ---------------------------------------------------------------------------------------------
# entries


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def history_entry(
    route: str,
    verdict: Verdict,
    *,
    run_dir: Path | None = None,
    since: str | None = None,
    timestamp: str | None = None,
    regressions: Iterable[Finding] = (),
) -> dict[str, Any]:
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
        "regressions": [str(r) for r in regressions if r.is_regression],
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
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("route"), str)
            or not isinstance(entry.get("prompt_types"), dict)
        ):
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
# the reference: the run that qualified each prompt-type


@dataclass(frozen=True)
class Reference:
    """What tonight's run of one prompt-type is compared with."""

    prompt_type: str
    run_id: str | None
    verdict: str | None  # the reference's verdict for the type (GO: the type is live)
    source: str  # "routing.json" | "history"
    live: bool  # routed to the candidate: only live types can regress
    run_dir: Path | None = None  # where its pairs.jsonl is, when found
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    alpha: float | None = None  # the level its interval was computed at
    baseline_usd_per_request: float | None = None
    candidate_usd_per_request: float | None = None


def _route_history(entries: Sequence[Mapping[str, Any]], route: str) -> list[Mapping[str, Any]]:
    return [e for e in entries if e.get("route") == route]


def _find_run_dir(run_id: str, out: Path, hints: Iterable[Any], base: Path | None = None) -> Path | None:
    """A run directory named `run_id`: one of the recorded paths (as written, or relative to `base`, the
    folder of the file that recorded it), else OUT/run_id."""
    for hint in hints:
        if isinstance(hint, str) and hint:
            for p in (Path(hint), *((base / hint,) if base is not None and not Path(hint).is_absolute() else ())):
                if p.name == run_id and (p / "pairs.jsonl").is_file():
                    return p
    p = out / run_id
    return p if (p / "pairs.jsonl").is_file() else None


def routed_choice(routing_route: Mapping[str, Any] | None, verdict: Verdict | None = None) -> dict[str, str]:
    """Per prompt-type, the candidate configuration a multi-candidate route is watched on: the one routing.json
    routes it to, else tonight's recommended one. Empty for a single-candidate route."""
    out: dict[str, str] = {}
    if verdict is not None and verdict.recommended:
        out.update({t: n for t, n in verdict.recommended.items() if n})
    if isinstance(routing_route, Mapping) and isinstance(routing_route.get("prompt_types"), Mapping):
        for t, d in routing_route["prompt_types"].items():
            if isinstance(d, Mapping) and d.get("candidate"):
                out[str(t)] = str(d["candidate"])
            elif isinstance(d, Mapping) and d.get("fallback", {}).get("from_candidate"):
                out[str(t)] = str(d["fallback"]["from_candidate"])  # routed back: still watched on that one
    return out


def routed_verdict(verdict: Verdict, choice: Mapping[str, str]) -> Verdict:
    """The verdict with each prompt-type's figures taken from the candidate it is routed to (`choice`);
    a single-candidate verdict unchanged."""
    if not verdict.candidates or not choice:
        return verdict
    by_name = {c.name: {tv.prompt_type: tv for tv in c.prompt_types} for c in verdict.candidates}
    types = [by_name.get(choice.get(tv.prompt_type, ""), {}).get(tv.prompt_type, tv) for tv in verdict.prompt_types]
    from equiv.stats.decide import overall

    return verdict.model_copy(update={"prompt_types": types, "verdict": overall(tv.verdict for tv in types)})


def routed_pairs(pairs: Sequence[Pair], choice: Mapping[str, str], first: str | None) -> list[Pair]:
    """Each prompt-type's pairs of the candidate it is routed to (the `first` candidate's where `choice` names
    none); a run whose pairs name no candidate is kept whole."""
    if not any(p.candidate_name for p in pairs):
        return list(pairs)
    return [p for p in pairs if (p.candidate_name or first) == choice.get(p.prompt_type, first)]


def _type_figures(
    run_dir: Path | None,
    history_entry_: Mapping[str, Any] | None,
    prompt_type: str,
    candidate: str | None = None,
) -> dict[str, Any]:
    """The reference's recorded estimate, interval, level and costs: verdict.json first (the figures of
    `candidate` when it names one of the run's candidates), else its history line."""
    if run_dir is not None and (run_dir / "verdict.json").is_file():
        try:
            data = json.loads((run_dir / "verdict.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and candidate is not None:
            for c in data.get("candidates") or []:
                if isinstance(c, dict) and c.get("name") == candidate:
                    data = {**data, "prompt_types": c.get("prompt_types")}
        if isinstance(data, dict):
            for tv in data.get("prompt_types") or []:
                if isinstance(tv, dict) and tv.get("prompt_type") == prompt_type:
                    q: dict[str, Any] = tv["quality_diff"] if isinstance(tv.get("quality_diff"), dict) else {}
                    cost: dict[str, Any] = tv["cost"] if isinstance(tv.get("cost"), dict) else {}
                    return {
                        "estimate": _finite(q.get("estimate")),
                        "ci_low": _finite(q.get("ci_low")),
                        "ci_high": _finite(q.get("ci_high")),
                        "alpha": _finite(tv.get("alpha_tested")) or _finite(data.get("alpha")),
                        "baseline_usd_per_request": _finite(cost.get("baseline_usd_per_request")),
                        "candidate_usd_per_request": _finite(cost.get("candidate_usd_per_request")),
                    }
    if history_entry_ is not None:
        t = (history_entry_.get("prompt_types") or {}).get(prompt_type)
        if isinstance(t, Mapping):
            return {
                "estimate": _finite(t.get("estimate")),
                "ci_low": _finite(t.get("ci_low")),
                "ci_high": _finite(t.get("ci_high")),
                "alpha": _finite(history_entry_.get("alpha")),
                "baseline_usd_per_request": _finite(t.get("baseline_usd_per_request")),
                "candidate_usd_per_request": _finite(t.get("candidate_usd_per_request")),
            }
    return {}


def reference_of(
    verdict: Verdict, prompt_type: str, *, source: str = "routing.json", run_dir: Path | None = None
) -> Reference:
    """The reference a finished run's verdict makes for one of its prompt-types (live when it is GO)."""
    tv = next((t for t in verdict.prompt_types if t.prompt_type == prompt_type), None)
    q = tv.quality_diff if tv is not None else None
    cost = tv.cost if tv is not None else None
    return Reference(
        prompt_type=prompt_type,
        run_id=verdict.run_id,
        verdict=tv.verdict if tv is not None else None,
        source=source,
        live=tv is not None and tv.verdict == "GO",
        run_dir=run_dir,
        estimate=q.estimate if q else None,
        ci_low=q.ci_low if q else None,
        ci_high=q.ci_high if q else None,
        alpha=(tv.alpha_tested if tv is not None and tv.alpha_tested is not None else verdict.alpha),
        baseline_usd_per_request=cost.baseline_usd_per_request if cost else None,
        candidate_usd_per_request=cost.candidate_usd_per_request if cost else None,
    )


def find_references(
    route: str,
    routing_route: Mapping[str, Any] | None,
    entries: Sequence[Mapping[str, Any]],
    out: Path,
    *,
    exclude_run_id: str | None = None,
    routing_dir: Path | None = None,
) -> dict[str, Reference]:
    """Per prompt-type, the run tonight is compared with.

    `routing_route` is the route's entry in routing.json (None when it has none): each type's decision
    names the qualifying run. Without one, a type's reference is the route's first nightly run in which it
    was GO. The run's directory is looked for where routing.json / the history recorded it, then in OUT.
    """
    history = [e for e in _route_history(entries, route) if e.get("run_id") != exclude_run_id]
    by_id = {str(e.get("run_id")): e for e in history}
    refs: dict[str, Reference] = {}
    if isinstance(routing_route, Mapping) and isinstance(routing_route.get("prompt_types"), Mapping):
        candidate = routing_route.get("candidate")
        for name, decision in routing_route["prompt_types"].items():
            if not isinstance(decision, Mapping):
                continue
            run_id = decision.get("run_id")
            run_id = str(run_id) if run_id else None
            verdict = decision.get("verdict")
            model = decision.get("model")
            routed_to = decision.get("candidate")  # a candidate configuration (several candidates, or a named one)
            live = verdict == "GO" and (
                routed_to is not None or model is None or candidate is None or model == candidate
            )
            run_dir = None
            if run_id:
                hints = [routing_route.get("run_dir"), (by_id.get(run_id) or {}).get("run_dir")]
                run_dir = _find_run_dir(run_id, out, hints, routing_dir)
            figures = _type_figures(
                run_dir, by_id.get(run_id) if run_id else None, str(name), str(routed_to) if routed_to else None
            )
            refs[str(name)] = Reference(
                prompt_type=str(name),
                run_id=run_id,
                verdict=str(verdict) if verdict is not None else None,
                source="routing.json",
                live=live,
                run_dir=run_dir,
                **figures,
            )
        return refs
    for e in history:  # oldest first: the first night a type was GO qualified it for the watch
        for name, t in (e.get("prompt_types") or {}).items():
            if name in refs or not isinstance(t, Mapping) or t.get("verdict") != "GO":
                continue
            run_id = str(e.get("run_id")) if e.get("run_id") else None
            run_dir = _find_run_dir(run_id, out, [e.get("run_dir")]) if run_id else None
            refs[str(name)] = Reference(
                prompt_type=str(name),
                run_id=run_id,
                verdict="GO",
                source="history",
                live=True,
                run_dir=run_dir,
                **_type_figures(run_dir, e, str(name)),
            )
    return refs


# ---------------------------------------------------------------------------------------------
# the two-run quality test (I/O: reads the reference's pairs)


def draw_seed(seed: int, run_id: str) -> int:
    """An independent bootstrap stream per run (two runs resampled with the same stream are correlated)."""
    return (seed * 1_000_003 + zlib.crc32(run_id.encode("utf-8"))) % (2**31 - 1)


def _draws(pairs: Sequence[Pair], settings: Settings, run_id: str) -> dict[str, Any]:
    from equiv.analyze import quality_draws

    if not pairs:
        return {}
    return quality_draws(pairs, settings.model_copy(update={"seed": draw_seed(settings.seed, run_id)}))


@dataclass
class DropTests:
    """Tonight's quality tests per live type, and why a type could not be tested."""

    tests: dict[str, DropTest] = field(default_factory=dict)
    untested: dict[str, str] = field(default_factory=dict)


def load_reference_pairs(ref: Reference) -> list[Pair]:
    """The reference run's pairs.jsonl (empty when it has no run directory)."""
    from equiv.store import RunDir

    return RunDir(ref.run_dir).load_pairs() if ref.run_dir is not None else []


def drop_tests(
    verdict: Verdict,
    pairs: Sequence[Pair],
    references: Mapping[str, Reference],
    settings: Settings,
    *,
    reference_pairs: Callable[[Reference], Sequence[Pair]] = load_reference_pairs,
) -> DropTests:
    """The two-run test of every live type measured tonight, from both runs' bootstrap draws.

    A reference whose pairs are gone but whose estimate and interval are recorded is used through a
    normal approximation of its draws; one with neither is reported as not tested.
    """
    from equiv.stats.regression import drop_test, se_from_interval

    out = DropTests()
    live = {
        tv.prompt_type: tv
        for tv in verdict.prompt_types
        if tv.prompt_type in references and references[tv.prompt_type].live
    }
    if not live:
        return out
    tonight = _draws(pairs, settings, verdict.run_id)
    cached: dict[str, dict[str, Any]] = {}
    for name, tv in live.items():
        ref = references[name]
        if tv.quality_diff is None or name not in tonight:
            out.untested[name] = "no judged pairs tonight"
            continue
        key = ref.run_id or str(ref.run_dir)
        if key not in cached:
            try:
                ref_pairs = reference_pairs(ref)
            except Exception as e:
                ref_pairs = []
                out.untested[name] = f"the reference's pairs.jsonl cannot be read ({e})"
            cached[key] = _draws(ref_pairs, settings, key)
        old = cached[key].get(name)
        se = None
        if old is None and ref.ci_low is not None and ref.ci_high is not None:
            se = se_from_interval(ref.ci_low, ref.ci_high, ref.alpha or settings.alpha)
        ref_est = ref.estimate
        if ref_est is None:
            if old is not None and len(old):
                ref_est = float(sum(old) / len(old))
            else:
                out.untested.setdefault(
                    name,
                    f"reference run {ref.run_id or '?'} not found (no pairs.jsonl under the output folder, no "
                    "recorded estimate): the quality drop was not tested",
                )
                continue
        test = drop_test(
            tonight[name],
            old,
            estimate=tv.quality_diff.estimate,
            reference_estimate=ref_est,
            selected=ref.verdict == "GO",
            reference_se=se,
        )
        if test is None:
            out.untested.setdefault(
                name,
                f"reference run {ref.run_id or '?'} has no draws or interval for this type: the quality drop "
                "was not tested",
            )
        else:
            out.untested.pop(name, None)
            out.tests[name] = test
    return out


# ---------------------------------------------------------------------------------------------
# the rules (pure)


def _cost_share(cand: float | None, base: float | None) -> float | None:
    if cand is None or base is None or base <= 0:
        return None
    return cand / base


def assess(
    route: str,
    current: Mapping[str, Any],
    references: Mapping[str, Reference],
    tests: DropTests,
    *,
    alpha: float,
    correction: str,
    cost_share: float,
) -> tuple[list[Finding], dict[str, dict[str, Any]]]:
    """(findings, per-type records) of tonight's history entry `current` against the references.

    The records go into the history line as `prompt_types[t]["nightly"]`.
    """
    from equiv.stats.regression import drop_levels

    run_id = str(current.get("run_id")) if current.get("run_id") else None
    cur_types = current.get("prompt_types") or {}
    levels = drop_levels({t: x.p_value for t, x in tests.tests.items()}, alpha, correction)
    findings: list[Finding] = []
    records: dict[str, dict[str, Any]] = {}
    for name, cur in cur_types.items():
        if not isinstance(cur, Mapping):
            continue
        ref = references.get(name)
        record: dict[str, Any] = {"run_id": run_id}
        if ref is None or not ref.live:
            record["status"] = "not_live"
            if ref is not None:
                record.update(reference_run_id=ref.run_id, reference_verdict=ref.verdict)
            records[name] = record
            continue
        found: list[Finding] = []

        def add(kind: str, message: str, name: str = name, ref: Reference = ref, found: list[Finding] = found) -> None:
            found.append(Finding(route, name, kind, message, ref.run_id))

        verdict = cur.get("verdict")
        record.update(
            reference_run_id=ref.run_id,
            reference_source=ref.source,
            reference_verdict=ref.verdict,
            verdict=verdict,
        )
        if verdict == "NO_GO":
            add("no_go", "was GO, now NO_GO")
        elif verdict == "INCONCLUSIVE":
            add(
                "inconclusive",
                "was GO, now INCONCLUSIVE: a warning, not a regression (an unchanged route ends INCONCLUSIVE on "
                "some nights: about one in five at 80% power)",
            )
        test = tests.tests.get(name)
        if test is not None:
            level = levels[name]
            bound = test.upper_bound(level)
            significant = test.significant(level)
            record.update(test.as_dict(), level=level, upper_bound=round(bound, 6), significant=significant)
            if significant:
                adj = " (doubled: the reference was selected by its GO)" if test.selected else ""
                add(
                    "quality_drop",
                    f"quality estimate dropped {test.reference_estimate:+.3f} -> {test.estimate:+.3f} "
                    f"(difference {test.diff:+.3f}, upper bound {bound:+.3f}; one-sided p = {test.p_value:.3g}"
                    f"{adj} <= {level:.3g})",
                )
        else:
            estimate = _finite(cur.get("estimate"))
            record.update(estimate=estimate, reference_estimate=ref.estimate)
            why = tests.untested.get(name)
            if why:
                record["not_tested"] = why
                add("not_tested", why)
        # cost: the candidate's cost as a share of the baseline's on the same traffic (1 - saving)
        c_now, b_now = _finite(cur.get("candidate_usd_per_request")), _finite(cur.get("baseline_usd_per_request"))
        c_ref, b_ref = ref.candidate_usd_per_request, ref.baseline_usd_per_request
        share_now, share_ref = _cost_share(c_now, b_now), _cost_share(c_ref, b_ref)
        rise, basis = None, ""
        if share_now is not None and share_ref is not None and share_ref > 0:
            rise = share_now / share_ref - 1
            basis = f"the candidate's cost is {share_ref:.1%} -> {share_now:.1%} of the baseline's"
        elif c_now is not None and c_ref is not None and c_ref > 0:
            rise = c_now / c_ref - 1
            basis = f"${c_ref:.6g} -> ${c_now:.6g} per request"
        if rise is not None:
            record["cost"] = {
                "candidate_usd_per_request": c_now,
                "reference_candidate_usd_per_request": c_ref,
                "share_of_baseline": share_now,
                "reference_share_of_baseline": share_ref,
                "rise": round(rise, 6),
                "allowed": cost_share,
            }
            if rise > cost_share:
                add("cost_rise", f"candidate cost up {rise:.0%} ({basis}; allowed {cost_share:.0%})")
        kinds = [f.kind for f in found]
        record["kinds"] = kinds
        record["status"] = "regression" if any(f.is_regression for f in found) else "warning" if found else "ok"
        findings += found
        records[name] = record
    for name in vanished_live(references, current):
        ref = references[name]
        findings.append(
            Finding(
                route, name, "not_rechecked", "was GO and had no traffic in this window: not re-checked", ref.run_id
            )
        )
    return findings, records


def vanished_live(references: Mapping[str, Reference], current: Mapping[str, Any]) -> list[str]:
    """Live prompt-types that were not measured tonight (no traffic in the window)."""
    cur_types = current.get("prompt_types") or {}
    return sorted(t for t, r in references.items() if r.live and t not in cur_types)


def vanished_types(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Prompt-types that were GO in `previous` (a history or routing entry) and were not measured now."""
    if not previous:
        return []
    prev_types = previous.get("prompt_types") or {}
    cur_types = current.get("prompt_types") or {}
    return sorted(
        t for t, e in prev_types.items() if isinstance(e, Mapping) and e.get("verdict") == "GO" and t not in cur_types
    )


def record_findings(
    entry: dict[str, Any], findings: Sequence[Finding], records: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Write what tonight found into its history entry (optional fields: readers of the old ones are unaffected)."""
    for name, record in records.items():
        t = entry["prompt_types"].get(name)
        if isinstance(t, dict):
            t["nightly"] = dict(record)
    entry["regressions"] = [str(f) for f in findings if f.is_regression]
    entry["warnings"] = [str(f) for f in findings if not f.is_regression]
    entry["findings"] = [
        {
            "prompt_type": f.prompt_type,
            "kind": f.kind,
            "severity": "regression" if f.is_regression else "warning",
            "message": f.message,
            "run_id": entry.get("run_id"),
            "reference_run_id": f.previous_run_id,
        }
        for f in findings
    ]
    return entry


# ---------------------------------------------------------------------------------------------
# the night's state: a killed night is resumed, not bought again


def read_night_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("routes"), dict):
        data = {"schema_version": 1, "routes": {}}
    return data


def _parse_time(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def night_to_resume(
    state: Mapping[str, Any], route: str, since_arg: str, now: datetime, window: timedelta | None
) -> datetime | None:
    """The window start of the route's unfinished night, when tonight's command should resume it.

    Resumed: the same --since, not finished, started less than the window's length ago (at most 24 h;
    an absolute --since names the same window whenever it runs). Else None: a new night.
    """
    night = (state.get("routes") or {}).get(route)
    if not isinstance(night, Mapping) or night.get("status") != "running" or night.get("since_arg") != since_arg:
        return None
    since, started = _parse_time(night.get("since")), _parse_time(night.get("started_at"))
    if since is None or started is None:
        return None
    limit = min(window, MAX_RESUME_AGE) if window is not None else None
    if limit is not None and not timedelta(0) <= now - started < limit:
        return None
    return since


def update_night_state(path: Path, route: str, **fields: Any) -> None:
    """Record (atomically) the route's night: started (status running, window) or done (run id)."""
    state = read_night_state(path)
    night = dict(state["routes"].get(route) or {})
    night.update({k: v for k, v in fields.items()})
    state["routes"][route] = night
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, state)


# ---------------------------------------------------------------------------------------------
# summary.md of a nightly run


def nightly_summary(
    done: list[tuple[str, dict[str, Any], Path]],
    findings: list[Finding],
    failed: list[str],
    aborted: str | None,
    since: str,
    fallbacks: Sequence[str] = (),
) -> str:
    """Regressions first (what someone must act on), warnings, then each route's trend row and its summary.md."""
    from equiv.report.markdown import fmt_pct, fmt_signed, md_text

    regressions = [f for f in findings if f.is_regression]
    warnings = [f for f in findings if not f.is_regression]
    status = "ABORTED" if aborted else f"{len(regressions)} regression(s)" if regressions else "no regression"
    lines = [f"# equiv nightly: {status}", "", f"Traffic since {md_text(since, 60)}.", ""]
    if aborted:
        lines += [f"Stopped early: {md_text(aborted)}.", ""]
    if regressions:
        lines += ["**Regressions**", ""]
        lines += [f"- {md_text(str(r), 400)}" for r in regressions]
        lines.append("")
    if fallbacks:
        lines += ["**Routed back to the baseline** (`--fallback`)", ""]
        lines += [f"- {md_text(f, 400)}" for f in fallbacks]
        lines.append("")
    if warnings:
        lines += ["**Warnings** (not regressions)", ""]
        lines += [f"- {md_text(str(w), 400)}" for w in warnings]
        lines.append("")
    if failed:
        lines += ["**Routes not run**", ""] + [f"- {md_text(f, 400)}" for f in failed] + [""]
    if done:
        lines += [
            "| route | prompt-type | verdict | quality diff [CI] | vs reference (p) | saving | candidate $/request |",
            "|---|---|:---:|---:|---:|---:|---:|",
        ]
        for route, entry, _run_dir in done:
            for t, e in (entry.get("prompt_types") or {}).items():
                est, lo, hi = e.get("estimate"), e.get("ci_low"), e.get("ci_high")
                q = f"{fmt_signed(est)} [{fmt_signed(lo)}, {fmt_signed(hi)}]"
                night: Mapping[str, Any] = e["nightly"] if isinstance(e.get("nightly"), Mapping) else {}
                diff, p = night.get("diff"), night.get("p_value")
                vs = f"{fmt_signed(diff)} (p {p:.2g})" if isinstance(p, (int, float)) else "—"
                cost = e.get("candidate_usd_per_request")
                lines.append(
                    f"| {md_text(route, 80)} | {md_text(t, 80)} | **{md_text(e.get('verdict'), 20)}** | "
                    f"{q} | {vs} | {fmt_pct(e.get('saving'))} | {'—' if cost is None else f'${cost:.6g}'} |"
                )
        lines.append("")
    for route, _entry, run_dir in done:
        part = Path(run_dir) / "summary.md"
        if part.is_file():
            lines += [f"### route {md_text(route, 80)}", "", part.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines).rstrip() + "\n"
