"""What the evaluation spent, where a sequential test stopped, and what `equiv optimize` found, as the reports
show them (issue 16: the eval-cost line; SPEC "Spending less"; SPEC "Candidates": equiv optimize).

Everything here reads the verdict (`Verdict.eval_cost`, `TypeVerdict.sequential`) or run.json (`optimize`): it
formats, it never computes a figure of its own. The texts returned are plain: each report escapes them its own
way (HTML autoescape, `md_text`, `clean`). Prompts in run.json's `optimize` are model text: untrusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from equiv.report.markdown import fmt_usd, several_candidates
from equiv.schema import EvalCost, SequentialSummary, TypeVerdict, Verdict

FIXED_N = "fixed-n design"


def fmt_share(x: float) -> str:
    """The spend as a share of a saving: whole percent from 10%, one decimal from 0.1%, then "<0.1%"."""
    if not math.isfinite(x):
        return "—"
    pct = x * 100
    if pct >= 9.95:
        return f"{pct:,.0f}%"
    if pct >= 0.095:
        return f"{pct:.1f}%"
    return "<0.1%" if pct > 0 else "0%"


def fmt_e(x: float) -> str:
    """An e-value (or 1/alpha) in three significant digits: 31, 4.1, 2.02e+04."""
    return f"{x:.3g}"


def _any_go(verdict: Verdict) -> bool:
    """Whether some prompt-type can switch: a GO (with several candidates, a recommended one)."""
    if several_candidates(verdict):
        return any(name is not None for name in (verdict.recommended or {}).values())
    return any(tv.verdict == "GO" for tv in verdict.prompt_types)


def fixed_n_text(ec: EvalCost) -> str | None:
    """What the fixed-n real-time design would have spent, only when it differs from this run:
    "fixed-n design: $0.33, 400 pairs; this run bought 360"."""
    if ec.pairs_fixed_n == ec.pairs_bought and fmt_usd(ec.fixed_n_realtime_usd) == fmt_usd(ec.usd):
        return None
    text = f"{FIXED_N}: {fmt_usd(ec.fixed_n_realtime_usd)}, {ec.pairs_fixed_n:,} pairs"
    if ec.pairs_bought != ec.pairs_fixed_n:
        text += f"; this run bought {ec.pairs_bought:,}"
    return text


def saving_share_text(verdict: Verdict) -> str | None:
    """The spend against the first month's projected saving of the types that can switch, or why there is none."""
    ec = verdict.eval_cost
    if ec is None:
        return None
    saving, share = ec.first_month_saving_usd, ec.share_of_first_month_saving
    if saving is not None and share is not None:
        return f"{fmt_share(share)} of the first month's projected saving of {fmt_usd(saving)}"
    if saving is not None:  # a GO whose projected saving is not above zero
        return f"the first month's projected saving is {fmt_usd(saving)}: nothing to set the spend against"
    why = "no traffic volume to project the GO types' saving" if _any_go(verdict) else "no prompt-type is a GO"
    return f"no projected saving to set it against ({why})"


def eval_cost_tail(verdict: Verdict) -> str:
    """What follows the amount spent: " (fixed-n design: ...); 0.4% of the first month's ..." ("" for old runs)."""
    ec = verdict.eval_cost
    if ec is None:
        return ""
    fixed = fixed_n_text(ec)
    share = saving_share_text(verdict)
    return (f" ({fixed})" if fixed else "") + (f"; {share}" if share else "")


def eval_cost_text(verdict: Verdict) -> str | None:
    """The eval-cost line: "$0.30 spent (fixed-n design: $0.33, 400 pairs; this run bought 360); 0.4% of the
    first month's projected saving of $75". None for a verdict without `eval_cost` (older runs)."""
    ec = verdict.eval_cost
    if ec is None:
        return None
    return f"{fmt_usd(ec.usd)} spent" + eval_cost_tail(verdict)


def sequential_text(s: SequentialSummary) -> str:
    """Where a type's anytime-valid test stopped: "stopped at prompt 52 of 200 (NO_GO, e-value 31 >= 1/alpha 20)"
    or "undecided after 200 prompts (largest e-value 4.1 < 20)"."""
    bar = fmt_e(1 / s.alpha) if s.alpha > 0 else "—"
    if s.decided_by:
        return (
            f"stopped at prompt {s.stopped_at:,} of {s.n_available:,} "
            f"({s.decided_by}, e-value {fmt_e(s.e_value)} >= 1/alpha {bar})"
        )
    of = f" of {s.n_available:,}" if s.stopped_at != s.n_available else ""
    return f"undecided after {s.stopped_at:,}{of} prompts (largest e-value {fmt_e(s.e_value)} < {bar})"


def sequential_types(verdict: Verdict) -> list[tuple[str, str | None, TypeVerdict]]:
    """(prompt-type, candidate name or None, verdict) of every type a sequential test ran on: every candidate's
    with several, else the run's own."""
    if several_candidates(verdict):
        return [
            (tv.prompt_type, c.name, tv)
            for c in verdict.candidates or ()
            for tv in c.prompt_types
            if tv.sequential is not None
        ]
    return [(tv.prompt_type, None, tv) for tv in verdict.prompt_types if tv.sequential is not None]


# ---------------------------------------------------------------------------------------------
# equiv optimize: run.json `optimize` of the held-out qualification run (read defensively: run.json is a file)


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _int(x: Any) -> int | None:
    return int(x) if isinstance(x, int) and not isinstance(x, bool) else None


def _str(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def _map(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def fmt_score(x: float | None) -> str:
    """A search score on [0, 1] (0.5 = as good as the baseline), three decimals as `equiv optimize` prints it."""
    return "—" if x is None else f"{x:.3f}"


def optimize_info(info: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """run.json's `optimize` in plain, typed values (None when the run was not made by `equiv optimize`)."""
    raw = (info or {}).get("optimize")
    if not isinstance(raw, Mapping):
        return None
    splits, search = _map(raw.get("splits")), _map(raw.get("search"))
    seed, best = _map(search.get("seed")), _map(search.get("best"))
    cautions = raw.get("cautions")
    spend, session = _num(search.get("spend_usd")), _num(search.get("spend_this_session_usd"))
    return {
        "prompt_type": _str(raw.get("prompt_type")) or "",
        "seed_prompt": _str(raw.get("seed_prompt")),
        "system_prompt": _str(raw.get("system_prompt")),
        "diff": _str(raw.get("diff")) or "",
        "reflection_model": _str(raw.get("reflection_model")),
        "prompt_file": _str(raw.get("prompt_file")),
        "cautions": [str(c) for c in cautions] if isinstance(cautions, list) else [],
        "method": _str(splits.get("method")),
        "split_seed": _int(splits.get("seed")),
        "splits": {k: _int(splits.get(k)) for k in ("train", "val", "heldout")},
        "ids_sha256": {str(k): str(v) for k, v in _map(splits.get("ids_sha256")).items()},
        "scores": {
            "seed": {k: _num(seed.get(k)) for k in ("train", "val")},
            "best": {k: _num(best.get(k)) for k in ("train", "val")},
        },
        "candidates_tried": _int(search.get("candidates_tried")),
        "metric_calls": _int(search.get("metric_calls")),
        "evaluations": _int(search.get("evaluations")),
        "spend_usd": spend,
        "search_cap_usd": _num(search.get("search_cap_usd")),
        "spend_this_session_usd": session if session is not None and session != spend else None,
        "stopped": _str(search.get("stopped")),
    }


def split_text(opt: Mapping[str, Any]) -> str:
    """ "train 39, validation 19, held-out 62" (a dash for a size run.json lacks)."""
    s = opt["splits"]
    return ", ".join(
        f"{label} {s[k]:,}" if s[k] is not None else f"{label} —"
        for k, label in (("train", "train"), ("val", "validation"), ("heldout", "held-out"))
    )


def search_text(opt: Mapping[str, Any]) -> str:
    """ "2 prompts tried, 106 evaluations, $0.234 spent of the $1.71 search cap" (what run.json has of it)."""
    parts = []
    if opt["candidates_tried"] is not None:
        parts.append(f"{opt['candidates_tried']:,} prompt{'s' if opt['candidates_tried'] != 1 else ''} tried")
    if opt["evaluations"] is not None:
        parts.append(f"{opt['evaluations']:,} evaluations")
    if opt["metric_calls"] is not None:
        parts.append(f"{opt['metric_calls']:,} scored answers")
    if opt["spend_usd"] is not None:
        spent = f"{fmt_usd(opt['spend_usd'])} spent"
        if opt["search_cap_usd"] is not None:
            spent += f" of the {fmt_usd(opt['search_cap_usd'])} search cap"
        if opt["spend_this_session_usd"] is not None:
            spent += f" ({fmt_usd(opt['spend_this_session_usd'])} this session)"
        parts.append(spent)
    return ", ".join(parts)


def heldout_type(verdict: Verdict, prompt_type: str) -> TypeVerdict | None:
    """The held-out verdict of the optimized type: this run's own (the page's), never recomputed."""
    return next((tv for tv in verdict.prompt_types if tv.prompt_type == prompt_type), None)


def diff_lines(diff: str, limit: int = 16_000) -> tuple[list[dict[str, str]], int]:
    """A unified diff line by line as (kind, text): file / hunk / add / del / ctx; and how many chars were cut."""
    shown = diff[:limit]
    lines = []
    header = True  # the "--- seed" / "+++ optimized" lines come before the first hunk only
    for line in shown.split("\n") if shown else []:
        if line.startswith("@@"):
            kind, header = "hunk", False
        elif header and line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        lines.append({"kind": kind, "text": line})
    return lines, len(diff) - len(shown)
