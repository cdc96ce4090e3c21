"""summary.md: the headline table of a verdict, short enough for a pull-request comment.

Only numbers, labels and the decision's own reasons are shown; model output never is. Every text that
comes from data (type names, reasons, model names) goes through `md_text`, so a `|` or a newline in a
prompt-type cannot break the table and no HTML in it renders on a code host.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from equiv.schema import CandidateVerdict, CostSummary, Interval, TypeVerdict, Verdict

DASH = "—"  # shown wherever a value is null (n = 0, cost unknown, no judge check ...)

_MD_SPECIALS = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "\r": " ",
        "\n": " ",
        "\t": " ",
    }
)


def md_text(value: object, limit: int | None = 240) -> str:
    """Data text made safe for one markdown table cell: one line, no live markup, bounded length."""
    text = " ".join(str(value).split())  # collapses every newline / tab / run of spaces
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text.translate(_MD_SPECIALS)


def _finite(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def fmt_signed(x: float | None, digits: int = 2) -> str:
    """A quality difference: always signed, so -0.03 and +0.03 read differently at a glance."""
    if not _finite(x):
        return DASH
    assert x is not None
    text = f"{x:+.{digits}f}"
    return "+0." + "0" * digits if text == "-0." + "0" * digits else text


def fmt_interval(iv: Interval | None, digits: int = 2) -> str:
    if iv is None:
        return DASH
    low, high = fmt_signed(iv.ci_low, digits), fmt_signed(iv.ci_high, digits)
    mark = " extrapolated" if iv.extrapolated else ""  # LC outside the observed lengths: not evidence
    return f"{fmt_signed(iv.estimate, digits)} [{low}, {high}]{mark}"


def fmt_pct(x: float | None, digits: int = 0) -> str:
    """A share in [0, 1] (or a saving, possibly negative) as a percentage."""
    if not _finite(x):
        return DASH
    assert x is not None
    return f"{x * 100:.{digits}f}%"


def fmt_pct_interval(iv: Interval | None, digits: int = 0) -> str:
    if iv is None:
        return DASH
    return f"{fmt_pct(iv.estimate, digits)} [{fmt_pct(iv.ci_low, digits)}, {fmt_pct(iv.ci_high, digits)}]"


def fmt_usd(x: float | None) -> str:
    """Money: whole dollars for large sums, enough significant digits for per-request prices."""
    if not _finite(x):
        return DASH
    assert x is not None
    sign = "-" if x < 0 else ""
    a = abs(x)
    if a >= 100:
        return f"{sign}${a:,.0f}"
    if a >= 1:
        return f"{sign}${a:,.2f}"
    if a == 0:
        return "$0"
    # per-request costs are tiny: keep three significant digits
    digits = max(2, 2 - int(math.floor(math.log10(a))))
    return f"{sign}${a:.{digits}f}"


def fmt_rate(x: float | None, digits: int = 2) -> str:
    if not _finite(x):
        return DASH
    assert x is not None
    return f"{x:.{digits}f}"


def first_reason(tv: TypeVerdict) -> str:
    return tv.reasons[0] if tv.reasons else ""


# ---------------------------------------------------------------------------------------------
# several candidates (SPEC "Candidates"): what every report shows of them, read from the verdict

RECOMMENDED_MARK = "★"  # the recommended candidate of a prompt-type: the cheapest GO (verdict.recommended)
KEEP_BASELINE = "none: keep the baseline"


def several_candidates(verdict: Verdict) -> bool:
    """The run compared the baseline with more than one candidate configuration."""
    return verdict.candidates is not None and len(verdict.candidates) > 1


def candidate_types(verdict: Verdict) -> list[str]:
    """Every prompt-type any candidate was decided on, in the analysis's order."""
    names: dict[str, None] = {}
    for c in verdict.candidates or ():
        names.update(dict.fromkeys(tv.prompt_type for tv in c.prompt_types))
    names.update(dict.fromkeys((verdict.recommended or {}).keys()))
    return list(names)


def type_verdict_of(candidate: CandidateVerdict, prompt_type: str) -> TypeVerdict | None:
    return next((tv for tv in candidate.prompt_types if tv.prompt_type == prompt_type), None)


def recommended_for(verdict: Verdict, prompt_type: str) -> CandidateVerdict | None:
    """The candidate the analysis recommends for a type (its cheapest GO); None: keep the baseline."""
    name = (verdict.recommended or {}).get(prompt_type)
    return next((c for c in verdict.candidates or () if c.name == name), None) if name is not None else None


def baseline_cost(verdict: Verdict, prompt_type: str) -> CostSummary | None:
    """The baseline's cost of a type, as the first candidate with cost figures measured it."""
    for c in verdict.candidates or ():
        tv = type_verdict_of(c, prompt_type)
        if tv is not None and tv.cost is not None:
            return tv.cost
    return None


def short_sha(sha: str | None) -> str | None:
    return sha[:12] if isinstance(sha, str) and sha else None


def fmt_params(params: Mapping[str, Any] | None) -> str:
    """Params compactly (max_tokens=120, temperature=0): the values as written in the config."""
    if not params:
        return ""
    return ", ".join(f"{k}={v}" for k, v in params.items())


def candidate_config_parts(candidate: CandidateVerdict) -> list[str]:
    """What a candidate configuration changes around its model, briefly (unescaped: callers escape)."""
    parts = []
    if candidate.params:
        parts.append(f"params {fmt_params(candidate.params)}")
    if candidate.system_prompt_sha256:
        parts.append(f"system prompt sha256 {short_sha(candidate.system_prompt_sha256)}")
    if candidate.last_turns is not None:
        parts.append(f"last {candidate.last_turns} user turns")
    return parts


def budget_text(cost: CostSummary | None) -> str | None:
    """The cost gate as the analysis decided it: over / within max_usd_per_request (None: no gate)."""
    if cost is None or cost.max_usd_per_request is None:
        return None
    limit = fmt_usd(cost.max_usd_per_request)
    if cost.over_budget is None:
        return f"limit {limit}"
    return f"over {limit}" if cost.over_budget else f"within {limit}"


def _candidate_lines(verdict: Verdict) -> list[str]:
    """summary.md's Candidates section: one table row per prompt-type x candidate, the recommended one marked,
    then each type's recommendation and what each configuration changes (nothing with one candidate)."""
    if not several_candidates(verdict):
        return []
    cands = verdict.candidates or []
    types = candidate_types(verdict)
    cells = [(t, c, type_verdict_of(c, t)) for t in types for c in cands]
    costs = [tv.cost for _, _, tv in cells if tv is not None and tv.cost is not None]
    show_task = any(c.candidate_usd_per_task is not None for c in costs)
    show_budget = any(c.max_usd_per_request is not None for c in costs)
    lines = ["", "**Candidates**", ""]
    lines.append(
        f"Each candidate configuration against the baseline {md_text(verdict.baseline)}; "
        f"{RECOMMENDED_MARK} = recommended for its prompt-type (the cheapest GO)."
        + (
            " $/task = $/request × calls per task ("
            + ", ".join(sorted({f"{c.calls_per_task:g}" for c in costs if c.calls_per_task is not None}))
            + "); quality-adjusted = $/task ÷ the share of tasks it wins or ties."
            if show_task
            else ""
        )
    )
    lines.append("")
    header = [
        "prompt-type",
        "candidate",
        "verdict",
        "n",
        "quality diff [CI]",
        "LC diff [CI]",
        "$/request",
        "saving [CI]",
    ]
    aligns = ["---", "---", ":---:", "---:", "---:", "---:", "---:", "---:"]
    if show_task:
        header += ["$/task", "quality-adjusted $/task"]
        aligns += ["---:", "---:"]
    if show_budget:
        header.append("budget")
        aligns.append("---")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(aligns) + "|")
    for t, c, tv in cells:
        is_rec = (verdict.recommended or {}).get(t) == c.name
        name = md_text(c.name, 80)
        row = [md_text(t, 80), f"{RECOMMENDED_MARK} **{name}**" if is_rec else name]
        if tv is None:
            row += [DASH] * (len(header) - 2)
            lines.append("| " + " | ".join(row) + " |")
            continue
        cost = tv.cost
        row += [
            f"**{tv.verdict}**",
            str(tv.n) + (f" ({tv.n_failed} failed)" if tv.n_failed else ""),
            fmt_interval(tv.quality_diff),
            fmt_interval(tv.lc_quality_diff),
            fmt_usd(cost.candidate_usd_per_request) if cost is not None else DASH,
            fmt_pct_interval(cost.saving) if cost is not None else DASH,
        ]
        if show_task:
            row.append(fmt_usd(cost.candidate_usd_per_task) if cost is not None else DASH)
            row.append(fmt_usd(cost.candidate_quality_adjusted_usd_per_task) if cost is not None else DASH)
        if show_budget:
            row.append(md_text(budget_text(cost) or DASH))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Recommended per prompt-type:")
    lines.append("")
    for t in types:
        rec = recommended_for(verdict, t)
        tv = type_verdict_of(rec, t) if rec is not None else None
        cost = tv.cost if tv is not None else None
        base = cost or baseline_cost(verdict, t)  # the recommended one's own measure of the baseline
        base_text = ""
        if base is not None:
            base_text = f"{fmt_usd(base.baseline_usd_per_request)}/request"
            if base.baseline_usd_per_task is not None:
                base_text += f", {fmt_usd(base.baseline_usd_per_task)}/task"
        if rec is None:
            tail = f" (the baseline costs {base_text})" if base_text else ""
            lines.append(f"- {md_text(t, 80)}: {KEEP_BASELINE}{tail}")
            continue
        cand_text = f"{fmt_usd(cost.candidate_usd_per_request)}/request" if cost is not None else ""
        if cost is not None and cost.candidate_usd_per_task is not None:
            cand_text += f", {fmt_usd(cost.candidate_usd_per_task)}/task"
        tail = f" at {cand_text}" if cand_text else ""
        tail += f" against the baseline's {base_text}" if base_text and cand_text else ""
        lines.append(f"- {md_text(t, 80)}: {RECOMMENDED_MARK} **{md_text(rec.name, 80)}** ({md_text(rec.model)}){tail}")
    lines.append("")
    lines.append("Configurations:")
    lines.append("")
    for c in cands:
        parts = [md_text(c.model), *(md_text(p) for p in candidate_config_parts(c))]
        tail = f" · eval cost {fmt_usd(c.eval_cost_usd)}" if c.eval_cost_usd is not None else ""
        lines.append(f"- {md_text(c.name, 80)}: overall **{c.verdict}** · " + " · ".join(parts) + tail)
    return lines


def _single_configuration(verdict: Verdict) -> str | None:
    """One configured candidate (its own prompt, params or turns): what it changes, in one line."""
    if verdict.candidates is None or len(verdict.candidates) != 1:
        return None
    c = verdict.candidates[0]
    parts = candidate_config_parts(c)
    if not parts and c.name == c.model:
        return None
    return f"Candidate configuration {md_text(c.name, 80)}: " + " · ".join([md_text(c.model), *map(md_text, parts)])


def reproduce_command(verdict: Verdict, run_info: Mapping[str, Any] | None) -> str:
    """`equiv report RUN_DIR`: re-analyses from pairs.jsonl, no model calls."""
    info = run_info or {}
    if isinstance(info.get("reproduce"), str):  # a re-analysis records its own command (flags included)
        return str(info["reproduce"])
    run_dir = info.get("run_dir") or f"reports/{verdict.run_id}"
    return f"equiv report {run_dir}"


def _instrument_lines(verdict: Verdict) -> list[str]:
    """The per-type instruments the analysis recorded: one table of checks, one line per type (nothing for a
    verdict without them)."""
    from equiv.report.instruments import check_cells, has_instruments, summary_parts

    types = [tv for tv in verdict.prompt_types if has_instruments(tv)]
    if not types:
        return []
    lines = ["", "**Instruments**", ""]
    rows = [(tv, c) for tv in types for c in tv.checks or ()]
    if rows:
        lines.append(
            "| prompt-type | check | kind | baseline pass | candidate pass | difference [CI] | agreement | result |"
        )
        lines.append("|---|---|---|---:|---:|---:|---:|---|")
        for tv, c in rows:
            cells = check_cells(c)
            name = cells["name"] if cells["name"] == cells["check"] else f"{cells['name']} ({cells['check']})"
            row = [md_text(tv.prompt_type, 80), md_text(name, 80), cells["kind"]]
            row += [cells[k] or " " for k in ("baseline", "candidate", "diff", "agreement")]
            row.append(md_text(cells["result"]) or " ")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    for tv in types:
        parts = summary_parts(tv, checks=False)
        if parts:
            lines.append(f"- {md_text(tv.prompt_type, 80)}: " + " · ".join(md_text(p, 400) for p in parts))
    return lines


def _sequential_lines(verdict: Verdict) -> list[str]:
    """--sequential: per type where its anytime-valid test stopped (nothing for a fixed-n run)."""
    from equiv.report.spend import sequential_text, sequential_types

    rows = sequential_types(verdict)
    if not rows:
        return []
    lines = ["", "**Sequential test** (anytime-valid: a type stops once an e-value reaches 1/alpha)", ""]
    for t, cand, tv in rows:
        assert tv.sequential is not None
        label = md_text(t, 80) + (f" ({md_text(cand, 80)})" if cand is not None else "")
        lines.append(f"- {label}: {md_text(sequential_text(tv.sequential), None)}")
    return lines


def _optimize_lines(verdict: Verdict, info: Mapping[str, Any]) -> list[str]:
    """A run made by `equiv optimize` (its held-out qualification): the splits, the search's score and spend, the
    held-out verdict and the cautions, briefly. The prompts themselves are model text: only in report.html."""
    from equiv.report.spend import fmt_score, heldout_type, optimize_info, search_text, split_text

    opt = optimize_info(info)
    if opt is None:
        return []
    lines = ["", f"**Optimized prompt** (equiv optimize, prompt-type {md_text(opt['prompt_type'], 80)})", ""]
    tv = heldout_type(verdict, opt["prompt_type"])
    if tv is not None:
        lines.append(
            f"- Held-out verdict: **{tv.verdict}** on {tv.n} pairs the search never saw · "
            f"quality diff {fmt_interval(tv.quality_diff)} · LC {fmt_interval(tv.lc_quality_diff)}"
        )
    split = f"- Splits: {split_text(opt)}"
    if opt["method"]:
        split += f" ({md_text(opt['method'])})"
    lines.append(split)
    sc = opt["scores"]
    lines.append(
        "- Search score (0 = always worse than the baseline, 0.5 = as good, 1 = always better): "
        f"seed prompt train {fmt_score(sc['seed']['train'])} / validation {fmt_score(sc['seed']['val'])}; "
        f"optimized train {fmt_score(sc['best']['train'])} / validation {fmt_score(sc['best']['val'])}"
    )
    search = search_text(opt)
    if opt["reflection_model"]:
        search += ("; " if search else "") + f"reflection model {opt['reflection_model']}"
    if search:
        lines.append(f"- Search: {md_text(search, None)}")
    if opt["stopped"]:
        lines.append(f"- Search stopped early: {md_text(opt['stopped'])}")
    if opt["prompt_file"]:
        lines.append(f"- Prompt: {md_text(opt['prompt_file'])} (the diff against the seed prompt is in report.html)")
    lines.extend(f"- Caution: {md_text(c, 400)}" for c in opt["cautions"])
    return lines


def render_markdown(verdict: Verdict, run_info: Mapping[str, Any] | None = None) -> str:
    """The summary.md text: title, overall verdict, one headline row per prompt-type, notes, reproduce."""
    info = run_info or {}
    lines: list[str] = []
    several = several_candidates(verdict)
    if several:
        target = ", ".join(md_text(c.name, 80) for c in verdict.candidates or ())
    else:
        target = md_text(verdict.candidate)
    lines.append(f"## equiv: {md_text(verdict.baseline)} → {target} (judge {md_text(verdict.judge)})")
    lines.append("")
    first = verdict.candidates[0] if verdict.candidates else None
    overall_label = f"Overall verdict ({md_text(first.name, 80)})" if several and first else "Overall verdict"
    facts = [
        f"**{overall_label}: {verdict.verdict}**",
        f"margin {fmt_rate(verdict.margin)}",
        f"alpha {fmt_rate(verdict.alpha, 3).rstrip('0').rstrip('.')}",
        f"correction {md_text(verdict.correction)}",
        f"run {md_text(verdict.run_id, None)}",
    ]
    if verdict.eval_cost_usd is not None:
        facts.append(f"eval cost {fmt_usd(verdict.eval_cost_usd)}")
    lines.append(" · ".join(facts))
    lines.append("")
    from equiv.report.spend import eval_cost_text

    spent = eval_cost_text(verdict)
    if spent:  # the eval-cost line (absent on older verdicts)
        lines.append(f"Evaluation cost: {md_text(spent, None)}.")
        lines.append("")
    if several and first is not None:
        lines.append(
            f"The first candidate, {md_text(first.name, 80)} ({md_text(first.model)}); every candidate is below."
        )
        lines.append("")
    configuration = _single_configuration(verdict)
    if configuration:
        lines.append(configuration)
        lines.append("")

    show_monthly = any(tv.cost is not None and tv.cost.monthly_saving_usd is not None for tv in verdict.prompt_types)
    header = ["prompt-type", "verdict", "n", "quality diff [CI]", "LC diff [CI]", "saving [CI]"]
    if show_monthly:
        header.append("monthly saving")
    header.append("reason")
    lines.append("| " + " | ".join(header) + " |")
    aligns = ["---", ":---:", "---:", "---:", "---:", "---:"] + (["---:"] if show_monthly else []) + ["---"]
    lines.append("|" + "|".join(aligns) + "|")
    for tv in verdict.prompt_types:
        n_cell = str(tv.n) + (f" ({tv.n_failed} failed)" if tv.n_failed else "")
        row = [
            md_text(tv.prompt_type, 80),
            f"**{tv.verdict}**",
            n_cell,
            fmt_interval(tv.quality_diff),
            fmt_interval(tv.lc_quality_diff),
            fmt_pct_interval(tv.cost.saving) if tv.cost is not None else DASH,
        ]
        if show_monthly:
            monthly = tv.cost.monthly_saving_usd if tv.cost is not None else None
            row.append(fmt_usd(monthly) + ("/mo" if _finite(monthly) else ""))
        row.append(md_text(first_reason(tv)) or DASH)
        lines.append("| " + " | ".join(row) + " |")
    if not verdict.prompt_types:
        lines.append("| (no prompt-types) |" + " |" * (len(header) - 1))
    lines.append("")

    from equiv.report.warnings import type_warnings

    if several:  # every candidate's GO is one that may get acted on
        cautions = [
            (f"{tv.prompt_type} ({c.name})", w)
            for c in verdict.candidates or ()
            for tv in c.prompt_types
            if tv.verdict == "GO"
            for w in type_warnings(tv)
        ]
    else:
        cautions = [(tv.prompt_type, w) for tv in verdict.prompt_types if tv.verdict == "GO" for w in type_warnings(tv)]
    notes: list[str] = []
    if verdict.aborted:
        notes.append(f"Run stopped early: {md_text(verdict.aborted)}. Results are partial.")
    notes.extend(md_text(n) for n in verdict.notes)
    lines.append(
        "Quality diff = candidate minus baseline on [-1, 1] (judge, both orders); LC = length-controlled. "
        f"GO needs both lower bounds above -{fmt_rate(verdict.margin)} and a cheaper candidate."
    )
    lines.extend(_sequential_lines(verdict))
    lines.extend(_candidate_lines(verdict))
    lines.extend(_instrument_lines(verdict))
    lines.extend(_optimize_lines(verdict, info))
    if cautions:  # a GO is what gets acted on: what weakens it is said next to it, not only in report.html
        lines.append("")
        lines.append("**Before acting on a GO**")
        lines.append("")
        lines.extend(f"- {md_text(t, 80)}: {md_text(w)}" for t, w in cautions)
    if notes:
        lines.append("")
        lines.append("**Notes**")
        lines.append("")
        lines.extend(f"- {n}" for n in notes)
    lines.append("")
    # inside a code span nothing is interpreted; only a backtick or newline could break out of it
    command = " ".join(reproduce_command(verdict, info).replace("`", "'").split())
    lines.append(f"Reproduce: `{command}`")
    lines.append("")
    return "\n".join(lines)
