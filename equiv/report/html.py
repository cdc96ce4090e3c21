"""report.html: one self-contained file a lead can read and sign off (issue 4).

Everything is computed here into plain values and drawn by templates/report.html.j2 through an
autoescaping jinja2 environment of its own, so every text that comes from traffic, models or judges
(prompts, answers, reasons, type names, model names) is escaped. Nothing from data is ever marked
safe: the only `Markup` is the page's own filter script, whose hash the page's Content-Security-Policy
allows — so even a missed escape could not run a script.

The page needs no network: inline CSS, inline SVG, one small script that only filters the evidence
browser. With scripts off every pair is listed and long texts stay collapsed in <details>.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from equiv.analyze import Analysis, CheckResult, PairResult, check_results, judgment_score, pair_results
from equiv.report import instruments as ins
from equiv.report.instruments import has_instruments
from equiv.report.markdown import (
    DASH,
    KEEP_BASELINE,
    baseline_cost,
    budget_text,
    candidate_config_parts,
    candidate_types,
    fmt_interval,
    fmt_params,
    fmt_pct,
    fmt_pct_interval,
    fmt_rate,
    fmt_signed,
    fmt_usd,
    reproduce_command,
    several_candidates,
    short_sha,
    type_verdict_of,
)
from equiv.report.spend import (
    diff_lines,
    eval_cost_text,
    fixed_n_text,
    fmt_e,
    fmt_score,
    heldout_type,
    optimize_info,
    saving_share_text,
    search_text,
    sequential_text,
    sequential_types,
    split_text,
)
from equiv.report.warnings import type_warnings
from equiv.schema import CandidateVerdict, Check, Judgment, Pair, TypeVerdict, Verdict

TEMPLATES = Path(__file__).parent / "templates"


# Size: a text longer than this is cut (with a note); the whole evidence browser shares a budget so
# 1,000 pairs stay well under 2 MB. Only the longest texts are cut when the budget binds.
TEXT_CAP = 4000
TEXT_CAP_MIN = 80
PAGE_BUDGET = 1_750_000  # bytes the page aims at; the text budget is what the markup leaves
CARD_OVERHEAD = 1_000  # bytes of markup (and judge reasons) per pair in the evidence browser
PAGE_OVERHEAD = 80_000  # CSS, script, headline, charts, tables
REASON_CAP = 1200
MAX_BYTES = 1_900_000
COLLAPSE_CHARS = 600  # longer texts start collapsed
COLLAPSE_LINES = 12
PREVIEW_CHARS = 110

OUTCOME_LABELS = {
    "lost": "candidate lost",
    "won": "candidate won",
    "tie": "tie",
    "inconsistent": "judge inconsistent across orders",
    "failed": "failed",
}


# ---------------------------------------------------------------------------------------------
# pair results: the analysis's (equiv/analyze.py), never recomputed here

candidate_score = judgment_score  # +1 candidate preferred, -1 baseline, 0 tie (SPEC "Statistics")


def _preferred(judgment: Judgment) -> str | None:
    s = judgment_score(judgment)
    if s is None:
        return None
    return "candidate" if s > 0 else "baseline" if s < 0 else "tie"


def _written_preference(judgment: Judgment) -> str | None:
    """What the judge's own word preferred, for a calibrated verdict (None when not calibrated)."""
    word = (judgment.model_extra or {}).get("written")
    if word not in ("A", "B", "tie"):
        return None
    return _preferred(judgment.model_copy(update={"winner": word}))


def outcomes(result: PairResult | Pair) -> list[str]:
    """Filter tags of a pair: lost / won / tie / inconsistent / failed (a pair may carry two)."""
    if isinstance(result, Pair):
        result = pair_results([result])[0][0]
    if result.score is None:
        return ["failed"]
    tags = [result.outcome] if result.outcome != "tie" else []
    if result.consistent is False:
        tags.append("inconsistent")
    elif result.outcome == "tie":
        tags.append("tie")
    return tags


# ---------------------------------------------------------------------------------------------
# small helpers


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _cut(text: str, cap: int) -> dict[str, Any]:
    """A text for display: what is shown, how much was cut, whether it starts collapsed."""
    total = len(text)
    shown = text if total <= cap else text[:cap]
    long = len(shown) > COLLAPSE_CHARS or shown.count("\n") >= COLLAPSE_LINES
    preview = " ".join(shown[: PREVIEW_CHARS * 2].split())[:PREVIEW_CHARS] if long else ""
    return {"text": shown, "total": total, "cut": total - len(shown), "long": long, "preview": preview + "…"}


def _message_text(message: Mapping[str, Any]) -> str:
    """OpenAI message content as text; non-text parts become placeholders (never URLs)."""
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, Mapping):
                parts.append(f"[{part.get('type', 'part')}]")
            else:
                parts.append(str(part))
        text = "\n".join(parts)
    elif content is None:
        text = ""
    else:
        text = str(content)
    if message.get("tool_calls"):
        text += ("\n" if text else "") + "[tool calls]"
    return text


def _water_fill(texts: Sequence[tuple[int, float]], budget: int, cap: int, floor: int) -> int:
    """The largest per-text cap c <= cap whose escaped total sum(w * min(len, c)) fits the budget.

    texts: (length, escaped bytes per character). Only texts longer than c are cut, so a few huge
    answers are shortened before any ordinary one is. Never below floor.
    """

    def total(c: int) -> float:
        return sum(w * min(n, c) for n, w in texts)

    if total(cap) <= budget:
        return cap
    lo, hi = floor, cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if total(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _weight(text: str) -> tuple[int, float]:
    """(chars, escaped UTF-8 bytes per char) of a text, measured on a sample for speed."""
    sample = text[:500]
    if not sample:
        return 0, 1.0
    return len(text), len(str(escape(sample)).encode("utf-8")) / len(sample)


def _run_date(verdict: Verdict, info: Mapping[str, Any]) -> str:
    for key in ("finished_at", "decided_at", "started_at"):
        value = info.get(key)
        if isinstance(value, str) and value:
            return value.replace("T", " ").removesuffix("Z").split(".")[0] + (" UTC" if "Z" in value else "")
    m = re.match(r"(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})", verdict.run_id)
    if m:
        y, mo, d, h, mi, _ = m.groups()
        return f"{y}-{mo}-{d} {h}:{mi} UTC"
    return ""


def _duration(info: Mapping[str, Any]) -> str | None:
    try:
        start = datetime.fromisoformat(str(info["started_at"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(info["finished_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    seconds = int((end - start).total_seconds())
    if seconds < 0:
        return None
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def _fmt_value(value: Any) -> str:
    """A run.json value for the facts table (dicts and lists compactly)."""
    if value is None:
        return DASH
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt_value(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_fmt_value(v)}" for k, v in value.items())
    return str(value)


def _ticks(lo: float, hi: float, max_ticks: int = 9) -> list[float]:
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0):
        if (hi - lo) / step <= max_ticks:
            break
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + 1e-9:
        ticks.append(round(k * step, 6))
        k += 1
    return ticks


def _axis_range(values: Sequence[float], margin: float) -> tuple[float, float]:
    lo = min([*values, -margin, 0.0])
    hi = max([*values, -margin, 0.0])
    pad = max(0.02, (hi - lo) * 0.08)
    return max(-1.0, lo - pad), min(1.0, hi + pad)


# ---------------------------------------------------------------------------------------------
# view model


def _check_view(checks: Sequence[CheckResult]) -> dict[str, Any]:
    """Judge-check comparisons of one type, as the analysis read them: counts and the ones the judge got wrong."""
    failed = []
    for c in checks:
        if c.passed:
            continue
        rows = []
        for j in c.judgments:
            intact_pos = "A" if j.order == "intact_first" else "B"
            pref = "tie" if j.winner == "tie" else "intact" if j.winner == intact_pos else "degraded"
            rows.append({"order": j.order.replace("_", " "), "prefers": pref, "reason": j.reason[:REASON_CAP]})
        if not c.readable:
            rows.append({"order": "-", "prefers": "unreadable", "reason": (c.error or "a verdict is missing")[:300]})
        failed.append({"pair_id": c.pair_id, "rows": rows})
    return {
        "n": sum(c.readable for c in checks),
        "passed": sum(c.passed for c in checks),
        "failed": failed[:50],
        "n_failed": len(failed),
    }


def _instruments_view(tv: TypeVerdict) -> dict[str, Any] | None:
    """A type's instruments as the analysis recorded them (None when it recorded none: the page is as before)."""
    if not has_instruments(tv):
        return None
    checks = [ins.check_cells(c) for c in tv.checks or ()]
    fields = [
        {
            "check": c.name,
            "rows": [
                {"field": name, "n": f.n, "rate": fmt_pct(f.agreement_rate)} for name, f in (c.fields or {}).items()
            ],
        }
        for c in tv.checks or ()
        if c.fields
    ]
    judges = [
        {
            "name": name,
            "n_judgments": d.n_judgments,
            "n_failures": d.n_failures,
            "quality": fmt_signed(d.quality_diff),
            "a_share": fmt_pct(d.position_a_share),
            "consistency": fmt_pct(d.position_consistency),
            "tie_rate": fmt_pct(d.tie_rate),
            "agreement": fmt_pct(d.agreement_with_panel),
            "family": ", ".join(d.same_family_as),
        }
        for name, d in (tv.judges or {}).items()
    ]
    jc = tv.judge_check
    weak = set(ins.weak_kinds(jc))
    kinds = [
        {
            "kind": kind,
            "n": k.n,
            "n_unreadable": k.n_unreadable,
            "pass_rate": fmt_pct(k.pass_rate),
            "blocking": k.blocking,
            "weak": kind in weak,
        }
        for kind, k in ((jc.by_kind or {}) if jc is not None else {}).items()
    ]
    h = tv.human_agreement
    human = None
    if h is not None:
        human = {
            "n": h.n,
            "n_without_ties": h.n_without_ties,
            "agreement": fmt_pct_interval(h.agreement),
            "agreement_without_ties": fmt_pct_interval(h.agreement_without_ties),
            "kappa": ins.fmt_plain_interval(h.kappa),
            "position_consistency": fmt_pct_interval(h.position_consistency),
        }
    return {
        "judged": ins.judged_text(tv),
        "checks": checks,
        "fields": fields,
        "judges": judges,
        "panel_agreement": ins.fmt_plain_interval(tv.panel_agreement) if tv.panel_agreement is not None else None,
        "kinds": kinds,
        "human": human,
    }


ZERO_LABEL = "0 = equal"
LABEL_CHAR_PX = 6.6  # a generous average glyph width of the 11px axis labels (digits and letters)
LABEL_GAP_PX = 6


def _line_labels(x_margin: float, x_zero: float, margin_text: str, zero_text: str) -> dict[str, Any]:
    """Where the margin and zero labels go, above their lines: centred on them, unless the two would then
    overlap (a small margin, a wide axis); then each is set beside its own line, the margin's to the left and
    zero's to the right (the margin line is always left of zero), so they never touch."""
    half_m, half_z = len(margin_text) * LABEL_CHAR_PX / 2, len(zero_text) * LABEL_CHAR_PX / 2
    if x_zero - x_margin >= half_m + half_z + LABEL_GAP_PX:
        margin_at, zero_at = {"x": x_margin, "anchor": "middle"}, {"x": x_zero, "anchor": "middle"}
    else:
        margin_at = {"x": round(x_margin - LABEL_GAP_PX / 2, 1), "anchor": "end"}
        zero_at = {"x": round(x_zero + LABEL_GAP_PX / 2, 1), "anchor": "start"}
    return {"margin_label_at": margin_at, "zero_label_at": zero_at}


def _forest(verdict: Verdict, rows: list[dict[str, Any]]) -> dict[str, Any]:
    values: list[float] = []
    for tv in verdict.prompt_types:
        for iv in (tv.quality_diff, tv.lc_quality_diff):
            if iv is not None:
                values += [iv.ci_low, iv.ci_high, iv.estimate]
    lo, hi = _axis_range(values, verdict.margin)
    left, width, right = 190, 760, 130
    row_h, top = 46, 34
    height = top + row_h * max(1, len(verdict.prompt_types)) + 44

    def x(v: float) -> float:
        return round(left + (min(max(v, lo), hi) - lo) / (hi - lo) * width, 1)

    items = []
    for i, (tv, row) in enumerate(zip(verdict.prompt_types, rows, strict=True)):
        y = top + row_h * i + row_h / 2
        bars = []
        for kind, iv, dy in (("raw", tv.quality_diff, -7), ("lc", tv.lc_quality_diff, 7)):
            if iv is None:
                continue
            bars.append(
                {
                    "kind": kind,
                    "y": y + dy,
                    "x1": x(iv.ci_low),
                    "x2": x(iv.ci_high),
                    "xe": x(iv.estimate),
                    "title": ("raw" if kind == "raw" else "length-controlled") + " " + fmt_interval(iv),
                }
            )
        items.append(
            {
                "y": y,
                "label": row["name_short"],
                "name": tv.prompt_type,
                "verdict": tv.verdict,
                "bars": bars,
                "band_y": top + row_h * i,
            }
        )
    return {
        "width": left + width + right,
        "height": height,
        "left": left,
        "plot_right": left + width,
        "top": top,
        "bottom": top + row_h * max(1, len(verdict.prompt_types)),
        "row_h": row_h,
        "x_zero": x(0.0),
        "x_margin": x(-verdict.margin),
        "margin_label": fmt_signed(-verdict.margin),
        **_line_labels(x(-verdict.margin), x(0.0), f"margin {fmt_signed(-verdict.margin)}", ZERO_LABEL),
        "ticks": [{"x": x(t), "label": fmt_signed(t) if t else "0"} for t in _ticks(lo, hi)],
        "entries": items,
    }


# ---------------------------------------------------------------------------------------------
# several candidates (SPEC "Candidates"): their verdicts and the cost-quality frontier, from the verdict

FRONTIER_W, FRONTIER_H = 600, 330
FRONTIER_LEFT, FRONTIER_RIGHT, FRONTIER_TOP, FRONTIER_BOTTOM = 62, 26, 26, 52
POINT_LABEL_CHARS = 22


def _nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Round values (1, 2, 5 x a power of ten apart) from lo to hi, for a linear money axis."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max_ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [k * step for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]


def _tick_usd(v: float) -> str:
    """A round money tick, as short as it is exact ($0.00005, $0.0002, $1.5)."""
    text = f"{v:.10f}".rstrip("0").rstrip(".")
    return "$" + (text if text not in ("", "-0") else "0")


def _cost_axis(costs: Sequence[float]) -> tuple[Any, list[float], bool]:
    """(value -> share of the axis, ticks, log scale?): log when every cost is positive and they span a
    factor of 8 or more (a cheap model is often 20x cheaper: on a linear axis every candidate would sit at 0)."""
    top = max(costs)
    if min(costs) > 0 and top / min(costs) >= 8:
        lmin, lmax = math.log10(min(costs)), math.log10(top)
        pad = (lmax - lmin) * 0.08
        lo, hi = lmin - pad, lmax + pad
        ticks = []
        for digits in ((1, 2, 5), (1,)):
            ticks = [
                d * 10.0**k
                for k in range(math.floor(lo), math.ceil(hi) + 1)
                for d in digits
                if lo <= math.log10(d * 10.0**k) <= hi
            ]
            if len(ticks) <= 8:
                break
        return (lambda v: (math.log10(v) - lo) / (hi - lo)), ticks, True
    hi = top * 1.1 if top > 0 else 1e-6
    return (lambda v: v / hi), _nice_ticks(0.0, hi), False


def _place_labels(points: list[dict[str, Any]], right: float) -> None:
    """Each point's name beside it, nudged down when it would overlap a name already placed."""
    placed: list[tuple[float, float, float]] = []
    for pt in sorted(points, key=lambda q: (q["x"], q["y"])):
        width = len(pt["label"]) * LABEL_CHAR_PX
        left_side = pt["x"] + 10 + width > right
        x1 = pt["x"] - 10 - width if left_side else pt["x"] + 10
        y = pt["y"] - 8
        for _ in range(8):
            if not any(x1 < b and x1 + width > a and abs(y - yy) < 13 for a, b, yy in placed):
                break
            y += 14
        placed.append((x1, x1 + width, y))
        pt["label_x"] = round(pt["x"] - 10 if left_side else pt["x"] + 10, 1)
        pt["label_y"] = round(y, 1)
        pt["label_anchor"] = "end" if left_side else "start"


def _frontier(verdict: Verdict, prompt_type: str, cands: Sequence[CandidateVerdict]) -> dict[str, Any]:
    """One prompt-type's cost-quality plane: x = cost per request, y = the quality difference with its interval,
    the baseline at its own cost and 0, the margin line, the recommended candidate ringed, and the frontier (no
    other point at most as expensive and at least as good, on the estimates) joined by a line."""
    rec = (verdict.recommended or {}).get(prompt_type)
    margin = verdict.margin
    points: list[dict[str, Any]] = []
    missing: list[dict[str, str]] = []
    for c in cands:
        tv = type_verdict_of(c, prompt_type)
        if tv is not None and tv.margin is not None:
            margin = tv.margin  # the type's own margin ([types."name"] margin)
        cost = _num(tv.cost.candidate_usd_per_request) if tv is not None and tv.cost is not None else None
        q = tv.quality_diff if tv is not None else None
        if tv is None or cost is None or q is None:
            why = "not run" if tv is None else "no completed pairs" if q is None else "no cost figures"
            missing.append({"name": c.name, "why": why})
            continue
        title = f"{c.name} ({c.model}): {tv.verdict}, quality {fmt_interval(q)}, {fmt_usd(cost)}/request"
        if tv.cost is not None and tv.cost.candidate_usd_per_task is not None:
            title += f", {fmt_usd(tv.cost.candidate_usd_per_task)}/task"
        points.append(
            {
                "name": c.name,
                "verdict": tv.verdict,
                "cost": cost,
                "est": q.estimate,
                "low": q.ci_low,
                "high": q.ci_high,
                "baseline": False,
                "recommended": c.name == rec,
                "title": title + (" (recommended)" if c.name == rec else ""),
            }
        )
    base = baseline_cost(verdict, prompt_type)
    base_usd = _num(base.baseline_usd_per_request) if base is not None else None
    if base_usd is not None:
        points.append(
            {
                "name": "baseline",
                "verdict": "",
                "cost": base_usd,
                "est": 0.0,
                "low": 0.0,
                "high": 0.0,
                "baseline": True,
                "recommended": False,
                "title": f"baseline ({verdict.baseline}): quality 0 by definition, {fmt_usd(base_usd)}/request",
            }
        )
    left, top = FRONTIER_LEFT, FRONTIER_TOP
    right, bottom = FRONTIER_W - FRONTIER_RIGHT, FRONTIER_H - FRONTIER_BOTTOM
    view: dict[str, Any] = {
        "w": FRONTIER_W,
        "h": FRONTIER_H,
        "left": left,
        "right": right,
        "top": top,
        "bottom": bottom,
        "points": [],
        "missing": missing,
        "pareto": "",
        "n_candidates": sum(not pt["baseline"] for pt in points),
        "margin_label": f"margin {fmt_signed(-margin)}",  # the caption names it even when nothing is drawn
    }
    if not points:
        return view
    share, cost_ticks, log = _cost_axis([pt["cost"] for pt in points])
    lo, hi = _axis_range([v for pt in points for v in (pt["low"], pt["high"], pt["est"])], margin)

    def x(v: float) -> float:
        return round(left + min(max(share(v), 0.0), 1.0) * (right - left), 1)

    def y(v: float) -> float:
        return round(bottom - (min(max(v, lo), hi) - lo) / (hi - lo) * (bottom - top), 1)

    for pt in points:
        short = pt["name"] if len(pt["name"]) <= POINT_LABEL_CHARS else pt["name"][: POINT_LABEL_CHARS - 1] + "…"
        pt.update(
            x=x(pt["cost"]),
            y=y(pt["est"]),
            y1=y(pt["low"]),
            y2=y(pt["high"]),
            x0=round(x(pt["cost"]) - 5, 1),
            y0=round(y(pt["est"]) - 5, 1),
            label=("★ " if pt["recommended"] else "") + short,
            cls=("base" if pt["baseline"] else pt["verdict"].lower()) + (" rec" if pt["recommended"] else ""),
        )
    best = -math.inf
    for pt in sorted(points, key=lambda q: (q["cost"], -q["est"], q["baseline"])):
        if pt["est"] > best + 1e-12:
            pt["frontier"] = True
            best = pt["est"]
        else:
            pt["frontier"] = False
    line = sorted((pt for pt in points if pt["frontier"]), key=lambda q: q["cost"])
    _place_labels(points, right)
    view.update(
        points=points,
        pareto=" ".join(f"{pt['x']},{pt['y']}" for pt in line) if len(line) > 1 else "",
        y_zero=y(0.0),
        y_margin=y(-margin),
        margin_label=f"margin {fmt_signed(-margin)}",
        y_ticks=[{"y": y(t), "label": fmt_signed(t) if t else "0"} for t in _ticks(lo, hi, 6)],
        x_ticks=[{"x": x(t), "label": _tick_usd(t)} for t in cost_ticks],
        x_label="cost per request" + (" (log scale)" if log else ""),
    )
    return view


def _candidates_view(verdict: Verdict, info: Mapping[str, Any]) -> dict[str, Any] | None:
    """Several candidates: each configuration, and per prompt-type every candidate's verdict, quality and cost
    with the recommended one (the analysis's cheapest GO) marked, and the frontier. None with one candidate."""
    if not several_candidates(verdict):
        return None
    cands = verdict.candidates or []
    listed = info.get("candidates") if isinstance(info.get("candidates"), list) else []
    assert isinstance(listed, list)
    files = {str(c.get("name")): c.get("system_prompt_file") for c in listed if isinstance(c, Mapping)}
    configs = [
        {
            "name": c.name,
            "model": c.model,
            "params": fmt_params(c.params) or DASH,
            "sha": short_sha(c.system_prompt_sha256),
            "sha_full": c.system_prompt_sha256 or "",
            "file": files.get(c.name) if isinstance(files.get(c.name), str) else None,
            "last_turns": c.last_turns,
            "verdict": c.verdict,
            "eval_cost": fmt_usd(c.eval_cost_usd) if c.eval_cost_usd is not None else DASH,
        }
        for c in cands
    ]
    costs = [tv.cost for c in cands for tv in c.prompt_types if tv.cost is not None]
    show_task = any(c.candidate_usd_per_task is not None for c in costs)
    show_budget = any(c.max_usd_per_request is not None for c in costs)
    types = []
    for i, t in enumerate(candidate_types(verdict)):
        rec = (verdict.recommended or {}).get(t)
        rows = []
        for c in cands:
            tv = type_verdict_of(c, t)
            cost = tv.cost if tv is not None else None
            rows.append(
                {
                    "name": c.name,
                    "model": c.model,
                    "recommended": c.name == rec,
                    "missing": tv is None,
                    "verdict": tv.verdict if tv is not None else "",
                    "n": tv.n if tv is not None else 0,
                    "n_failed": tv.n_failed if tv is not None else 0,
                    "quality": fmt_interval(tv.quality_diff) if tv is not None else DASH,
                    "lc": fmt_interval(tv.lc_quality_diff) if tv is not None else DASH,
                    "win_or_tie": fmt_pct(tv.win_or_tie_rate) if tv is not None else DASH,
                    "cost": fmt_usd(cost.candidate_usd_per_request) if cost else DASH,
                    "saving": fmt_pct_interval(cost.saving) if cost else DASH,
                    "monthly": fmt_usd(cost.monthly_saving_usd) if cost else DASH,
                    "task": fmt_usd(cost.candidate_usd_per_task) if cost else DASH,
                    "qa_task": fmt_usd(cost.candidate_quality_adjusted_usd_per_task) if cost else DASH,
                    "budget": budget_text(cost) or DASH,
                    "over_budget": bool(cost and cost.over_budget),
                    "reason": tv.reasons[0] if tv is not None and tv.reasons else "",
                    "reasons": list(tv.reasons[1:]) if tv is not None else [],
                }
            )
        rec_row = next((r for r in rows if r["recommended"]), None)
        base = baseline_cost(verdict, t)
        rec_tv = next((type_verdict_of(c, t) for c in cands if c.name == rec), None)
        if rec_tv is not None and rec_tv.cost is not None:
            base = rec_tv.cost  # the recommended one's own measure of the baseline
        types.append(
            {
                "idx": i,
                "name": t,
                "recommended": rec_row,
                "base_cost": fmt_usd(base.baseline_usd_per_request) if base else DASH,
                "base_task": fmt_usd(base.baseline_usd_per_task) if base else DASH,
                "calls_per_task": f"{base.calls_per_task:g}" if base and base.calls_per_task is not None else None,
                "rows": rows,
                "frontier": _frontier(verdict, t, cands),
            }
        )
    return {
        "configs": configs,
        "types": types,
        "show_task": show_task,
        "show_budget": show_budget,
        "show_eval_cost": any(c.eval_cost_usd is not None for c in cands),
        "keep_baseline": KEEP_BASELINE,
        "names": [c.name for c in cands],
    }


def _sequential_view(verdict: Verdict) -> list[dict[str, Any]]:
    """--sequential: per type (and candidate, with several) where its anytime-valid test stopped, as recorded."""
    rows = []
    for t, cand, tv in sequential_types(verdict):
        s = tv.sequential
        assert s is not None
        rows.append(
            {
                "name": t,
                "candidate": cand,
                "verdict": tv.verdict,
                "stopped_at": f"{s.stopped_at:,}",
                "n_available": f"{s.n_available:,}",
                "decided_by": s.decided_by,
                "e_value": fmt_e(s.e_value),
                "bar": fmt_e(1 / s.alpha) if s.alpha > 0 else DASH,
                "alpha": f"{s.alpha:g}",
                "text": sequential_text(s),
            }
        )
    return rows


OPTIMIZE_TEXT_CAP = 16_000  # chars of the optimized prompt and of the diff shown (the whole is in the prompt file)


def _optimize_view(verdict: Verdict, info: Mapping[str, Any]) -> dict[str, Any] | None:
    """A run made by `equiv optimize`: run.json's `optimize` (splits, search figures, the diff, cautions) and the
    optimized type's held-out verdict, which is this page's own. None for any other run. Prompts are model text:
    the template escapes them like every other text."""
    opt = optimize_info(info)
    if opt is None:
        return None
    lines, diff_cut = diff_lines(opt["diff"], OPTIMIZE_TEXT_CAP)
    tv = heldout_type(verdict, opt["prompt_type"])
    idx = next((i for i, t in enumerate(verdict.prompt_types) if t is tv), None)
    heldout = None
    if tv is not None:
        heldout = {
            "idx": idx,
            "verdict": tv.verdict,
            "n": tv.n,
            "quality": fmt_interval(tv.quality_diff),
            "lc": fmt_interval(tv.lc_quality_diff),
            "saving": fmt_pct_interval(tv.cost.saving) if tv.cost else DASH,
            "reason": tv.reasons[0] if tv.reasons else "",
        }
    sc = opt["scores"]
    return {
        "prompt_type": opt["prompt_type"],
        "reflection_model": opt["reflection_model"],
        "prompt_file": opt["prompt_file"],
        "cautions": opt["cautions"],
        "method": opt["method"],
        "split_seed": opt["split_seed"],
        "splits": opt["splits"],
        "split_text": split_text(opt),
        "ids": {k: {"short": short_sha(v) or DASH, "full": v} for k, v in opt["ids_sha256"].items()},
        "scores": [
            {"label": "seed prompt", "train": fmt_score(sc["seed"]["train"]), "val": fmt_score(sc["seed"]["val"])},
            {"label": "optimized prompt", "train": fmt_score(sc["best"]["train"]), "val": fmt_score(sc["best"]["val"])},
        ],
        "search": search_text(opt),
        "stopped": opt["stopped"],
        "heldout": heldout,
        "diff": lines,
        "diff_cut": diff_cut,
        "system_prompt": _cut(opt["system_prompt"], OPTIMIZE_TEXT_CAP) if opt["system_prompt"] is not None else None,
    }


def _history(verdict: Verdict, history: Sequence[Mapping[str, Any]] | None) -> dict[str, Any] | None:
    if not history:
        return None
    runs: list[dict[str, Any]] = []
    for entry in history:
        if not isinstance(entry, Mapping):
            continue
        types = entry.get("prompt_types")
        when = entry.get("decided_at") or entry.get("started_at") or ""
        runs.append(
            {
                "run_id": str(entry.get("run_id", "")),
                "when": str(when).replace("T", " ").removesuffix("Z")[:16],
                "types": types if isinstance(types, Mapping) else {},
            }
        )
    if verdict.run_id not in {r["run_id"] for r in runs}:
        runs.append(
            {
                "run_id": verdict.run_id,
                "when": "this run",
                "types": {
                    tv.prompt_type: {
                        "verdict": tv.verdict,
                        "estimate": tv.quality_diff.estimate if tv.quality_diff else None,
                        "ci_low": tv.quality_diff.ci_low if tv.quality_diff else None,
                        "ci_high": tv.quality_diff.ci_high if tv.quality_diff else None,
                        "saving": tv.cost.saving.estimate if tv.cost else None,
                    }
                    for tv in verdict.prompt_types
                },
            }
        )
    runs = runs[-30:]
    names: list[str] = [tv.prompt_type for tv in verdict.prompt_types]
    for r in runs:
        names += [str(t) for t in r["types"] if str(t) not in names]
    charts = []
    w, h, left, top, bottom = 380, 186, 44, 14, 44
    plot_w, plot_h = w - left - 14, h - top - bottom
    for name in names[:12]:
        points = []
        for i, r in enumerate(runs):
            entry = r["types"].get(name)
            if not isinstance(entry, Mapping):
                continue
            points.append(
                {
                    "i": i,
                    "run_id": r["run_id"],
                    "when": r["when"],
                    "verdict": str(entry.get("verdict") or ""),
                    "est": _num(entry.get("estimate")),
                    "lo": _num(entry.get("ci_low")),
                    "hi": _num(entry.get("ci_high")),
                    "saving": _num(entry.get("saving")),
                }
            )
        if not any(p[k] is not None for p in points for k in ("est", "lo", "hi")):
            continue
        vals = [v for p in points for v in (p["est"], p["lo"], p["hi"]) if v is not None]
        lo, hi = _axis_range(vals, verdict.margin)

        def y(v: float, lo: float = lo, hi: float = hi) -> float:
            return round(top + (hi - min(max(v, lo), hi)) / (hi - lo) * plot_h, 1)

        step = plot_w / max(1, len(runs) - 1) if len(runs) > 1 else 0
        for p in points:
            p["x"] = round(left + (p["i"] * step if len(runs) > 1 else plot_w / 2), 1)
            p["y"] = y(p["est"]) if p["est"] is not None else None
            p["y1"] = y(p["lo"]) if p["lo"] is not None else None
            p["y2"] = y(p["hi"]) if p["hi"] is not None else None
            p["letter"] = {"GO": "G", "NO_GO": "N", "INCONCLUSIVE": "?"}.get(p["verdict"], "")
            p["cls"] = p["verdict"].lower() if p["verdict"] in ("GO", "NO_GO", "INCONCLUSIVE") else "none"
        line = [f"{p['x']},{p['y']}" for p in points if p["y"] is not None]
        charts.append(
            {
                "name": name,
                "w": w,
                "h": h,
                "left": left,
                "right": left + plot_w,
                "top": top,
                "bottom": top + plot_h,
                "y_zero": y(0.0),
                "y_margin": y(-verdict.margin),
                "ticks": [{"y": y(t), "label": fmt_signed(t, 2) if t else "0"} for t in _ticks(lo, hi, 5)],
                "points": points,
                "polyline": " ".join(line),
                "first_when": runs[0]["when"][:10],
                "last_when": runs[-1]["when"][:10],
            }
        )

    def cell(e: Any) -> dict[str, str] | None:
        if not isinstance(e, Mapping):
            return None
        return {"verdict": str(e.get("verdict") or ""), "est": fmt_signed(_num(e.get("estimate")))}

    table = [
        {"run_id": r["run_id"], "when": r["when"], "cells": [cell(r["types"].get(n)) for n in names[:12]]} for r in runs
    ]
    return {"charts": charts, "names": names[:12], "table": table}


def _build_context(
    verdict: Verdict,
    pairs: Sequence[Pair],
    run_info: Mapping[str, Any] | None,
    checks: Sequence[Check] | None,
    history: Sequence[Mapping[str, Any]] | None,
    text_budget: int,
    text_floor: int = TEXT_CAP_MIN,
    results: Sequence[PairResult] = (),
    checked: Sequence[CheckResult] = (),
) -> dict[str, Any]:
    """`results` / `checked`: the analysis's per-pair and per-check results, in the order of `pairs` / checks."""
    info: Mapping[str, Any] = run_info or {}
    several = several_candidates(verdict)
    checks_by_type: dict[str, list[CheckResult]] = {}
    for c in checked:
        checks_by_type.setdefault(c.prompt_type, []).append(c)

    rows = []
    for i, tv in enumerate(verdict.prompt_types):
        diag = tv.diagnostics
        a_share = diag.position_a_share if diag and diag.position_a_share is not None else None
        a_share_source = "verdict" if a_share is not None else None
        slope = diag.length_slope if diag else None
        cost = tv.cost
        rows.append(
            {
                "idx": i,
                "name": tv.prompt_type,
                "name_short": tv.prompt_type if len(tv.prompt_type) <= 26 else tv.prompt_type[:25] + "…",
                "verdict": tv.verdict,
                "n": tv.n,
                "n_failed": tv.n_failed,
                "n_prompts": tv.n_prompts,
                "quality": fmt_interval(tv.quality_diff),
                "lc": fmt_interval(tv.lc_quality_diff),
                "saving": fmt_pct_interval(cost.saving) if cost else DASH,
                "monthly": fmt_usd(cost.monthly_saving_usd) if cost else DASH,
                "monthly_requests": (
                    f"{cost.monthly_requests:,.0f}" if cost and _num(cost.monthly_requests) is not None else DASH
                ),
                "base_cost": fmt_usd(cost.baseline_usd_per_request) if cost else DASH,
                "cand_cost": fmt_usd(cost.candidate_usd_per_request) if cost else DASH,
                "reasons": list(tv.reasons),
                "reason": tv.reasons[0] if tv.reasons else "",
                "win_rate": fmt_pct(tv.win_rate),
                "tie_rate": fmt_pct(tv.tie_rate),
                "position_consistency": fmt_pct(tv.position_consistency),
                "a_share": fmt_pct(a_share),
                "a_share_source": a_share_source,
                "slope": fmt_signed(slope),
                "judge_check": (
                    DASH if tv.judge_check is None else f"{fmt_pct(tv.judge_check.pass_rate)} of {tv.judge_check.n}"
                ),
                "mean_chars": (
                    f"{tv.mean_chars.get('baseline', 0):,.0f} / {tv.mean_chars.get('candidate', 0):,.0f}"
                    if tv.mean_chars
                    else DASH
                ),
                "samples_needed": tv.samples_needed,
                "alpha_tested": tv.alpha_tested,
                "judge_failures": diag.n_judge_failures if diag else None,
                "warnings": type_warnings(tv, a_share, slope),
                "checks": _check_view(checks_by_type[tv.prompt_type]) if tv.prompt_type in checks_by_type else None,
                "instruments": _instruments_view(tv),
            }
        )

    # cost panel totals: what switching the GO types would save per month
    go_monthly = [
        tv.cost.monthly_saving_usd
        for tv in verdict.prompt_types
        if tv.verdict == "GO" and tv.cost is not None and tv.cost.monthly_saving_usd is not None
    ]
    all_monthly = [
        tv.cost.monthly_saving_usd
        for tv in verdict.prompt_types
        if tv.cost is not None and tv.cost.monthly_saving_usd is not None
    ]

    # evidence: worst losses first; failed pairs last (scores and tags are the analysis's)
    scored = [(r.score, k, p, r) for k, (p, r) in enumerate(zip(pairs, results, strict=True))]
    scored.sort(key=lambda t: (t[0] is None, t[0] if t[0] is not None else 0.0, t[2].prompt_type, t[1]))
    weights: list[tuple[int, float]] = []
    for _, _, p, _ in scored:
        weights += [_weight(_message_text(m)) for m in p.messages if isinstance(m, Mapping)]
        for side in (p.baseline, p.candidate):
            if side is not None and side.output is not None:
                weights.append(_weight(side.output))
    cap = _water_fill(weights, text_budget, TEXT_CAP, text_floor)
    evidence = []
    for k, (score, _idx, p, result) in enumerate(scored):
        tags = outcomes(result)
        judgments = []
        for j in result.judgments:
            pref = _preferred(j)
            judgments.append(
                {
                    "order": j.order.replace("_", " "),
                    "a_is": "baseline"
                    if j.order == "baseline_first"
                    else "candidate"
                    if j.order == "candidate_first"
                    else None,
                    "winner": j.winner,
                    "written": (j.model_extra or {}).get("written"),
                    "written_prefers": _written_preference(j),
                    "prefers": pref or f"position {j.winner}",
                    "judge": j.judge,
                    "reason": j.reason[:REASON_CAP] + ("…" if len(j.reason) > REASON_CAP else ""),
                }
            )
        messages = [
            {"role": str(m.get("role", "")), **_cut(_message_text(m), cap)}
            for m in p.messages
            if isinstance(m, Mapping)
        ]
        prompt_chars = sum(m["total"] for m in messages)
        sides = []
        for label, side in (("Baseline", p.baseline), ("Candidate", p.candidate)):
            if side is None or side.output is None:
                sides.append({"label": label, "model": side.model if side else "", "missing": True})
            else:
                sides.append({"label": label, "model": side.model, "missing": False, **_cut(side.output, cap)})
        evidence.append(
            {
                "idx": k,
                "pair_id": p.pair_id,
                "type": p.prompt_type,
                "candidate": p.candidate_name or "",
                "tags": tags,
                "tag_labels": [OUTCOME_LABELS[t] for t in tags],
                "score": fmt_signed(score) if score is not None else DASH,
                "error": p.error,
                "messages": messages,
                "prompt_chars": prompt_chars,
                "sides": sides,
                "judgments": judgments,
                "failures": [{"order": f.order, "error": f.error[:300]} for f in p.judge_failures],
                "decided_by": ins.decided_by(result),
                "unjudged": result.decided_by is not None,  # scored 0 with no judge call
                "gate_failures": [{**g, "why": g["why"][:300]} for g in ins.gate_failures(result)],
            }
        )
    tag_counts = {t: sum(t in e["tags"] for e in evidence) for t in OUTCOME_LABELS}

    settings = info.get("settings") if isinstance(info.get("settings"), Mapping) else {}
    assert isinstance(settings, Mapping)
    settings_rows = [(str(k), _fmt_value(v)) for k, v in settings.items()]
    if not settings_rows:
        settings_rows = [
            ("margin", _fmt_value(verdict.margin)),
            ("alpha", _fmt_value(verdict.alpha)),
            ("seed", _fmt_value(verdict.seed)),
            ("bootstrap", _fmt_value(verdict.bootstrap)),
            ("correction", verdict.correction),
        ]
    models = info.get("models") if isinstance(info.get("models"), Mapping) else {}
    assert isinstance(models, Mapping)
    model_rows = []
    for name, price in models.items():
        price = price if isinstance(price, Mapping) else {}
        role = [
            r
            for r, m in (
                ("baseline", verdict.baseline),
                ("candidate", verdict.candidate),
                ("judge", verdict.judge),
            )
            if m == name and not (r == "candidate" and several)
        ]
        if several:  # which configurations run on this model
            named = [c.name for c in verdict.candidates or () if c.model == name]
            if named:
                role.append("candidate (" + ", ".join(named) + ")")
        model_rows.append(
            {
                "name": str(name),
                "role": ", ".join(role),
                "input": fmt_usd(_num(price.get("input_cost_per_mtok"))),
                "output": fmt_usd(_num(price.get("output_cost_per_mtok"))),
            }
        )
    hashes = info.get("template_hashes") if isinstance(info.get("template_hashes"), Mapping) else {}
    versions = info.get("versions") if isinstance(info.get("versions"), Mapping) else {}
    assert isinstance(hashes, Mapping) and isinstance(versions, Mapping)
    facts = [("run id", verdict.run_id)]
    for key, label in (
        ("started_at", "started"),
        ("finished_at", "finished"),
        ("traffic", "traffic"),
        ("command", "command"),
    ):
        if info.get(key) is not None:
            facts.append((label, _fmt_value(info[key])))
    duration = _duration(info)
    if duration:
        facts.append(("duration", duration))
    eval_cost = verdict.eval_cost_usd if verdict.eval_cost_usd is not None else _num(info.get("eval_cost_usd"))
    facts.append(("evaluation cost", fmt_usd(eval_cost)))
    if verdict.candidates is not None and len(verdict.candidates) == 1:  # one configured candidate: what it changes
        only = verdict.candidates[0]
        parts = candidate_config_parts(only)
        if parts or only.name != only.model:
            facts.append(("candidate", " · ".join([f"{only.name} ({only.model})", *parts])))
    facts.append(("CI method", f"{verdict.ci_method}, {verdict.bootstrap:,} paired bootstrap resamples"))
    facts.append(("schema version", str(verdict.schema_version)))

    groups: dict[str, list[str]] = {"GO": [], "NO_GO": [], "INCONCLUSIVE": []}
    for tv in verdict.prompt_types:
        groups[tv.verdict].append(tv.prompt_type)

    return {
        "v": verdict,
        "date": _run_date(verdict, info),
        "rows": rows,
        "any_instruments": any(r["instruments"] for r in rows),
        "groups": groups,
        "margin": fmt_rate(verdict.margin),
        "margin_neg": fmt_signed(-verdict.margin),
        "alpha": f"{verdict.alpha:g}",
        "confidence": f"{(1 - 2 * verdict.alpha) * 100:g}%",
        "forest": _forest(verdict, rows),
        "go_monthly": fmt_usd(sum(go_monthly)) if go_monthly else None,
        "all_monthly": fmt_usd(sum(all_monthly)) if all_monthly else None,
        "eval_cost": fmt_usd(eval_cost),
        "eval_line": eval_cost_text(verdict),
        "eval_fixed": fixed_n_text(verdict.eval_cost) if verdict.eval_cost is not None else None,
        "eval_share": saving_share_text(verdict),
        "sequential": _sequential_view(verdict),
        "optimize": _optimize_view(verdict, info),
        "evidence": evidence,
        "tag_counts": tag_counts,
        "outcome_labels": OUTCOME_LABELS,
        "types": list(dict.fromkeys([tv.prompt_type for tv in verdict.prompt_types] + [p.prompt_type for p in pairs])),
        "text_cap": cap,
        "text_cap_bound": any(e["cut"] for ev in evidence for e in ev["messages"] + ev["sides"] if e.get("cut")),
        "settings_rows": settings_rows,
        "model_rows": model_rows,
        "hashes": [(str(k), _fmt_value(v)) for k, v in hashes.items()],
        "versions": [(str(k), _fmt_value(v)) for k, v in versions.items()],
        "facts": facts,
        "reproduce": reproduce_command(verdict, info),
        "history": _history(verdict, history),
        "candidates": _candidates_view(verdict, info),
        "candidate_names": (
            list(
                dict.fromkeys(
                    [c.name for c in verdict.candidates or ()] + [e["candidate"] for e in evidence if e["candidate"]]
                )
            )
            if several or any(e["candidate"] for e in evidence)
            else []
        ),
        "script": _script(),
        "csp": _csp(),
    }


# ---------------------------------------------------------------------------------------------
# rendering


@cache
def _env() -> Environment:
    """The HTML environment: autoescaping always on, separate from the judge-prompt environment."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _script() -> Markup:
    # The page's own filter script (a template file, never data); allowed by hash in the CSP.
    return Markup((TEMPLATES / "filters.js").read_text(encoding="utf-8").strip())


@cache
def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(str(_script()).encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def _aligned(pairs: Sequence[Pair], results: Sequence[PairResult]) -> list[PairResult] | None:
    """The analysis's results in the order of `pairs`: the analysis lists them candidate by candidate, while
    pairs.jsonl interleaves the candidates. Matched by pair id (unique: a later candidate's is `<id>@<name>`);
    None when some pair has no result of its own (then the page derives them as the analysis would)."""
    if len(results) != len(pairs):
        return None
    if all(r.pair_id == p.pair_id for r, p in zip(results, pairs, strict=True)):
        return list(results)
    by_id = {r.pair_id: r for r in results}
    if len(by_id) != len(results) or any(p.pair_id not in by_id for p in pairs):
        return None
    return [by_id[p.pair_id] for p in pairs]


def _derived_results(pairs: Sequence[Pair], calibration: str) -> list[PairResult]:
    """Each pair's result by the analysis's own function, one candidate at a time as the analysis scores them
    (a calibration is fitted per candidate), in the order of `pairs`."""
    groups: dict[str | None, list[int]] = {}
    for k, p in enumerate(pairs):
        groups.setdefault(p.candidate_name, []).append(k)
    if len(groups) <= 1:
        return pair_results(pairs, calibration)[0]
    out: list[PairResult | None] = [None] * len(pairs)
    for idx in groups.values():
        for k, r in zip(idx, pair_results([pairs[k] for k in idx], calibration)[0], strict=True):
            out[k] = r
    return [r for r in out if r is not None]


def render_html(
    verdict: Verdict,
    pairs: Sequence[Pair],
    run_info: Mapping[str, Any] | None = None,
    checks: Sequence[Check] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    *,
    analysis: Analysis | None = None,
) -> str:
    """The report page as one string. Texts are cut harder if the page would pass ~1.9 MB.

    `analysis`: the per-pair and per-check results the verdict rests on (what `analyze_run` returned).
    Without it (a report drawn from a verdict and its pairs alone) they are derived by the analysis's own
    functions, with the calibration the verdict records: the page never scores a pair its own way.
    """
    template = _env().get_template("report.html.j2")
    aligned = _aligned(pairs, analysis.pairs) if analysis is not None else None
    if analysis is not None and aligned is not None:
        results: Sequence[PairResult] = aligned
        checked: Sequence[CheckResult] = analysis.checks
    else:
        every_type = [tv for c in verdict.candidates or () for tv in c.prompt_types] or verdict.prompt_types
        calibrated = any(
            tv.diagnostics and tv.diagnostics.calibration and tv.diagnostics.calibration.n_pairs for tv in every_type
        )
        results = _derived_results(pairs, "position" if calibrated else "none")
        checked = check_results(checks or [])
    budget = max(100_000, PAGE_BUDGET - PAGE_OVERHEAD - CARD_OVERHEAD * len(pairs))
    floor = TEXT_CAP_MIN
    while True:
        html = template.render(
            **_build_context(verdict, pairs, run_info, checks, history, budget, floor, results, checked)
        )
        if len(html.encode("utf-8")) <= MAX_BYTES or floor <= 40:
            return html
        # markup and escaping were heavier than the budget assumed: cut the texts harder
        budget, floor = int(budget * 0.6), max(40, floor // 2)


def write_html(
    path: Path,
    verdict: Verdict,
    pairs: Sequence[Pair],
    run_info: Mapping[str, Any] | None = None,
    checks: Sequence[Check] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    *,
    analysis: Analysis | None = None,
) -> None:
    """Write report.html (atomically: a half-written report is never left behind)."""
    path = Path(path)
    html = render_html(verdict, pairs, run_info, checks, history, analysis=analysis)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
