"""Every report shows every candidate of a multi-candidate run (SPEC "Candidates"), as the analysis decided it.

One real run (the simulated fake/* models through litellm, no network): the baseline against three
configurations on two prompt-types. "mini" is the cheap -instr model as the traffic calls it (it loses
everything), "mini-tuned" the same model with the system prompt it needs (GO on ticket-triage: the
recommended one), and a third whose name is hostile markup, on a mid-priced model over the cost gate.
"""

from __future__ import annotations

import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from rich.console import Console

import equiv
from equiv.analyze import pair_results
from equiv.report.html import render_html
from equiv.report.markdown import fmt_interval, fmt_usd, md_text, render_markdown
from equiv.report.terminal import print_verdict
from equiv.schema import Check, Pair, Verdict

from . import chromium
from .factory import make_pairs, make_run_info, make_verdict

ROOT = Path(__file__).resolve().parents[2]
TRAFFIC = ROOT / "fixtures" / "traffic.jsonl"
HOSTILE = "<script>alert('cand')</script>"
TYPES = ["reply-draft", "ticket-triage"]

CONFIG = f"""
baseline = "fake/skill-99"
judge = "fake/judge"
per_type = 80
correction = "holm"
bootstrap = 500
calls_per_task = 3
max_usd_per_request = 0.00023
types = {json.dumps(TYPES)}
judge_check_min = 4

[[candidates]]
name = "mini"
model = "fake/skill-99-v2-instr"

[[candidates]]
name = "mini-tuned"
model = "fake/skill-99-v2-instr"
system_prompt = "Answer the request. Mention every detail of it."

[[candidates]]
name = {json.dumps(HOSTILE)}
model = "fake/skill-98"
last_turns = 2

[models."fake/skill-99"]
input_cost_per_mtok = 2.50
output_cost_per_mtok = 10.00
[models."fake/skill-99-v2-instr"]
input_cost_per_mtok = 0.15
output_cost_per_mtok = 0.60
[models."fake/skill-98"]
input_cost_per_mtok = 1.00
output_cost_per_mtok = 4.00
[models."fake/judge"]
input_cost_per_mtok = 2.00
output_cost_per_mtok = 8.00
"""


class Run:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.verdict = Verdict.model_validate_json((path / "verdict.json").read_bytes())
        self.info: dict[str, Any] = json.loads((path / "run.json").read_text())
        self.pairs = [Pair.model_validate_json(line) for line in (path / "pairs.jsonl").read_text().splitlines()]
        self.checks = [Check.model_validate_json(x) for x in (path / "checks.jsonl").read_text().splitlines()]
        self.page = (path / "report.html").read_text(encoding="utf-8")
        self.summary = (path / "summary.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("candidates")
    config = folder / "equiv.toml"
    config.write_text(CONFIG)
    result = equiv.compare(TRAFFIC, config=config, out=folder / "reports")
    assert result.aborted is None
    return Run(Path(result.run_dir))


def terminal(verdict: Verdict, width: int = 80) -> str:
    buf = io.StringIO()
    print_verdict(verdict, Console(file=buf, width=width, color_system=None), run_dir="/r")
    return buf.getvalue()


def section(page: str, start: str, end: str = "</section>") -> str:
    i = page.index(start)
    return page[i : page.index(end, i)]


def test_the_run_is_what_the_reports_are_tested_on(run: Run) -> None:
    v = run.verdict
    assert v.candidates is not None and [c.name for c in v.candidates] == ["mini", "mini-tuned", HOSTILE]
    assert v.recommended == {"reply-draft": None, "ticket-triage": "mini-tuned"}
    hostile = v.candidates[2]
    assert any(tv.cost is not None and tv.cost.over_budget for tv in hostile.prompt_types)


# ---------------------------------------------------------------------------------------------
# terminal


def test_terminal_shows_every_candidate_per_type_and_what_is_recommended(run: Run) -> None:
    out = terminal(run.verdict, 80)
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "fake/skill-99 -> 3 candidates" in out
    table = out.split("recommended (")[0]
    assert table.count("baseline") == 2  # one baseline row per prompt-type, with its cost
    for c in run.verdict.candidates or []:
        for tv in c.prompt_types:
            assert tv.cost is not None
            assert fmt_interval(tv.quality_diff) in table and fmt_interval(tv.lc_quality_diff) in table
            assert fmt_usd(tv.cost.candidate_usd_per_request) in table
            assert fmt_usd(tv.cost.candidate_usd_per_task) in table
            assert f"{tv.prompt_type} ({c.name}): {tv.verdict} — " in out  # its reason, below the table
    assert "★ mini-tuned" in table and table.count("★") == 1
    assert "over budget" in table
    assert "recommended (ticket-triage): ★ mini-tuned (fake/skill-99-v2-instr)" in out
    assert "recommended (reply-draft): none: keep the baseline" in out
    assert f"Overall: mini NO_GO, mini-tuned {run.verdict.candidates[1].verdict}, {HOSTILE} " in out  # type: ignore[index]


def test_terminal_single_candidate_output_is_unchanged() -> None:
    out = terminal(make_verdict(), 80)
    assert "recommended" not in out and "candidates" not in out and "★" not in out
    assert out.splitlines()[0].strip() == "gpt-4o -> gpt-4o-mini"
    assert "Overall: NO_GO   evaluation cost $4.8700" in out


# ---------------------------------------------------------------------------------------------
# summary.md


def test_summary_has_a_candidates_section_with_every_candidate_and_the_recommendation(run: Run) -> None:
    md = run.summary
    assert md == render_markdown(run.verdict, run.info)  # what the run wrote is what the verdict renders
    assert md.startswith(f"## equiv: fake/skill-99 → mini, mini-tuned, {md_text(HOSTILE)} (judge fake/judge)")
    cands = md.split("**Candidates**")[1]
    rows = [line for line in cands.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 3 * len(TYPES)
    for c in run.verdict.candidates or []:
        for tv in c.prompt_types:
            assert tv.cost is not None
            row = next(r for r in rows if r.startswith(f"| {tv.prompt_type} |") and md_text(c.name) in r)
            assert f"**{tv.verdict}**" in row and fmt_interval(tv.quality_diff) in row
            assert fmt_usd(tv.cost.candidate_usd_per_request) in row
            assert fmt_usd(tv.cost.candidate_usd_per_task) in row
            assert ("over " if tv.cost.over_budget else "within ") + fmt_usd(0.00023) in row
    assert [r for r in rows if "★" in r] == [r for r in rows if r.startswith("| ticket-triage | ★ **mini-tuned** |")]
    assert "- ticket-triage: ★ **mini-tuned** (fake/skill-99-v2-instr) at $" in cands
    assert "- reply-draft: none: keep the baseline (the baseline costs $" in cands
    sha = (run.verdict.candidates or [])[1].system_prompt_sha256
    assert sha and f"system prompt sha256 {sha[:12]}" in cands
    assert "last 2 user turns" in cands
    assert "<script>" not in md and "&lt;script&gt;" in md


def test_summary_single_candidate_has_no_candidates_section() -> None:
    md = render_markdown(make_verdict())
    assert "**Candidates**" not in md and "★" not in md and "**Overall verdict: NO_GO**" in md


# ---------------------------------------------------------------------------------------------
# report.html


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_candidates_section_has_every_candidate_per_type(run: Run) -> None:
    page = run.page
    assert page == render_html(run.verdict, run.pairs, run.info, run.checks)  # re-derived: the same page
    cands = section(page, '<section id="candidates">')
    assert '<a href="#candidates">Candidates</a>' in page
    for i, t in enumerate(TYPES):
        block = section(cands, f'<div class="cand-type" id="cand-{i}">', "</table>")
        assert f"<h3>{t}:" in block
        for c in run.verdict.candidates or []:
            tv = next(x for x in c.prompt_types if x.prompt_type == t)
            assert tv.cost is not None
            row = section(block, f"{escape(c.name)}<br>", "</tr>")
            assert f"{tv.verdict}</span>" in row and fmt_interval(tv.quality_diff) in row
            assert fmt_usd(tv.cost.candidate_usd_per_request) in row and fmt_usd(tv.cost.candidate_usd_per_task) in row
    tt = section(cands, '<div class="cand-type" id="cand-1">', "</table>")
    assert '<span class="rec-name">★ mini-tuned</span> recommended' in tt
    assert tt.count('class="rec-row"') == 1
    rd = section(cands, '<div class="cand-type" id="cand-0">', "</table>")
    assert "none: keep the baseline" in rd and 'class="rec-row"' not in rd
    assert 'class="over"' in rd  # the hostile candidate's cost gate on reply-draft
    # configurations: the prompt's hash, last_turns
    sha = (run.verdict.candidates or [])[1].system_prompt_sha256
    assert sha and f'<span title="{sha}">{sha[:12]}</span>' in cands


def test_html_frontier_has_one_point_per_candidate_and_the_baseline(run: Run) -> None:
    cands = section(run.page, '<section id="candidates">')
    svgs = re.findall(r"<svg .*?</svg>", cands, flags=re.S)
    assert len(svgs) == len(TYPES)
    for t, svg in zip(TYPES, svgs, strict=True):
        parser = _Tags()
        parser.feed(svg)
        groups = [a for tag, a in parser.tags if tag == "g" and "fp" in (a.get("class") or "").split()]
        names = [g["data-name"] for g in groups]
        assert sorted(names, key=str) == sorted(["mini", "mini-tuned", HOSTILE, "baseline"], key=str)
        assert sum("base" in (g["class"] or "").split() for g in groups) == 1
        recs = [g["data-name"] for g in groups if "rec" in (g["class"] or "").split()]
        assert recs == (["mini-tuned"] if t == "ticket-triage" else [])
        assert svg.count('class="rec-ring"') == len(recs)
        assert svg.count('class="margin"') == 1 and svg.count('class="zero"') == 1
        # the frontier: the points no other point beats on both cost and quality (estimates), joined when 2+
        plane = {"baseline": (_baseline_usd(run.verdict, t), 0.0)}
        for c in run.verdict.candidates or []:
            tv = next(x for x in c.prompt_types if x.prompt_type == t)
            assert tv.cost is not None and tv.quality_diff is not None
            plane[c.name] = (tv.cost.candidate_usd_per_request, tv.quality_diff.estimate)
        undominated = {
            n
            for n, (cost, q) in plane.items()
            if not any(o != n and oc <= cost and oq >= q and (oc, oq) != (cost, q) for o, (oc, oq) in plane.items())
        }
        on = {g["data-name"] for g in groups if "on-frontier" in (g["class"] or "").split()}
        assert on == undominated and "mini" not in on
        assert ('class="pareto"' in svg) == (len(on) > 1)
        # each point sits at its cost (x) and estimate (y): the cheaper further left, the better higher up
        at: dict[str, tuple[float, float]] = {}
        current = ""
        for tag, a in parser.tags:
            if tag == "g" and "fp" in (a.get("class") or "").split():
                current = a["data-name"] or ""
            elif tag in ("circle", "rect") and a.get("class") == "dot" and current not in at:
                dx, dy = (0.0, 0.0) if tag == "circle" else (5.0, 5.0)
                at[current] = (float(a.get("cx") or a["x"] or 0) + dx, float(a.get("cy") or a["y"] or 0) + dy)
        assert set(at) == set(names)
        assert at["mini-tuned"][0] < at[HOSTILE][0] < at["baseline"][0]
        assert at["mini-tuned"][1] < at["mini"][1]  # SVG y grows downwards: mini (quality -1) is lowest


def _baseline_usd(verdict: Verdict, prompt_type: str) -> float:
    first = (verdict.candidates or [])[0]
    tv = next(x for x in first.prompt_types if x.prompt_type == prompt_type)
    assert tv.cost is not None
    return tv.cost.baseline_usd_per_request


def test_frontier_joins_the_undominated_points_in_cost_order() -> None:
    """Built by hand: a dominated candidate is off the line; the line runs cheapest first."""
    from equiv.report.html import _frontier
    from equiv.schema import CandidateVerdict, CostSummary, Interval

    base = make_verdict().prompt_types[0]

    def cand(name: str, cost: float, q: float, verdict: str = "GO") -> CandidateVerdict:
        tv = base.model_copy(
            update={
                "verdict": verdict,
                "quality_diff": Interval(estimate=q, ci_low=q - 0.05, ci_high=q + 0.05),
                "cost": CostSummary(
                    baseline_usd_per_request=0.01,
                    candidate_usd_per_request=cost,
                    saving=Interval(estimate=0.5, ci_low=0.5, ci_high=0.5),
                ),
            }
        )
        return CandidateVerdict(name=name, model="m", verdict=verdict, prompt_types=[tv])  # type: ignore[arg-type]

    cands = [cand("cheap", 0.001, -0.04), cand("dominated", 0.002, -0.08, "NO_GO"), cand("better", 0.004, -0.01)]
    v = make_verdict().model_copy(update={"candidates": cands, "recommended": {base.prompt_type: "cheap"}})
    f = _frontier(v, base.prompt_type, cands)
    on = {pt["name"]: pt["frontier"] for pt in f["points"]}
    assert on == {"cheap": True, "dominated": False, "better": True, "baseline": True}
    xs = [float(xy.split(",")[0]) for xy in f["pareto"].split()]
    assert len(xs) == 3 and xs == sorted(xs)
    assert [pt["name"] for pt in f["points"] if pt["recommended"]] == ["cheap"]
    assert f["x_label"] == "cost per request (log scale)"  # 0.001 .. 0.01: a factor of 10


def test_html_escapes_a_hostile_candidate_name(run: Run) -> None:
    page = run.page
    parser = _Tags()
    parser.feed(page)
    assert [t for t, _ in parser.tags].count("script") == 1  # only the page's own filter script
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#39;cand&#39;)&lt;/script&gt;" in page
    text = "".join(parser.text)
    assert HOSTILE in text  # shown as text (table, frontier label, filter, evidence)


def test_html_evidence_names_each_pairs_candidate_and_shows_the_analysis_scores(run: Run) -> None:
    page = run.page
    options = re.search(r'<select name="candidate">(.*?)</select>', page, re.S)
    assert options is not None and options.group(1).count("<option") == 4  # all + 3
    parser = _Tags()
    parser.feed(page)
    cards = [a.get("data-candidate") for tag, a in parser.tags if tag == "article"]
    assert len(cards) == len(run.pairs)
    assert sorted(cards, key=str) == sorted((p.candidate_name for p in run.pairs), key=str)
    # the score on every card is its own pair's, though pairs.jsonl interleaves the candidates
    assert len({p.candidate_name for p in run.pairs[:20]}) > 1
    scores: dict[str, float | None] = {}
    for name in {p.candidate_name for p in run.pairs}:  # the analysis scores each candidate's pairs apart
        scores.update((r.pair_id, r.score) for r in pair_results([p for p in run.pairs if p.candidate_name == name])[0])
    found = re.findall(r'<span class="sc">score <b>([^<]+)</b></span> <code>([^<]+)</code>', page)
    assert len(found) == len(run.pairs)
    assert len({score for score, _ in found}) > 1
    for score, pid in found:
        s = scores[pid.replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'").replace("&amp;", "&")]
        assert score == ("—" if s is None else f"{s:+.2f}".replace("-0.00", "+0.00"))


def test_html_single_candidate_has_no_candidates_section() -> None:
    page = render_html(make_verdict(), make_pairs(20), make_run_info())
    assert '<section id="candidates">' not in page and 'name="candidate"' not in page
    assert "data-candidate=" not in page and '<span class="cand">' not in page
    assert "<title>equiv verdict: gpt-4o → gpt-4o-mini · NO_GO</title>" in page


# ---------------------------------------------------------------------------------------------
# in a real browser


@pytest.mark.browser
@pytest.mark.skipif(
    not chromium.available() and not os.environ.get("EQUIV_REQUIRE_BROWSER"), reason="needs /usr/bin/chromium"
)
def test_frontier_points_render_in_chromium(run: Run, tmp_path: Path) -> None:
    """Every point of every frontier is drawn inside its chart, with a visible fill; nothing hostile runs."""
    page = tmp_path / "report.html"
    page.write_text(run.page, encoding="utf-8")
    dom, console = chromium.dump_dom(page, tmp_path / "profile")
    assert console == []
    assert dom.count("<script") == 1 and "<title>equiv verdict: fake/skill-99 → 3 candidates</title>" in dom
    # measure the points: a driver script (the CSP dropped for it, as test_browser's filter test does)
    driver = (
        "<script>var out=[];document.querySelectorAll('figure.frontier svg').forEach(function(svg){"
        "var b=svg.getBoundingClientRect();svg.querySelectorAll('g.fp .dot').forEach(function(d){"
        "var r=d.getBoundingClientRect();var s=getComputedStyle(d);"
        "out.push([d.parentNode.getAttribute('data-name'),r.width,r.height,"
        "r.left>=b.left&&r.right<=b.right&&r.top>=b.top&&r.bottom<=b.bottom,s.fill,s.visibility]);});});"
        "var p=document.createElement('pre');p.id='measured';p.textContent=JSON.stringify(out);"
        "document.body.appendChild(p);</script></body>"
    )
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", run.page).replace("</body>", driver)
    page.write_text(html, encoding="utf-8")
    dom, console = chromium.dump_dom(page, tmp_path / "profile")
    assert console == []
    m = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert m is not None
    measured = json.loads(
        m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )
    assert len(measured) == len(TYPES) * 4
    for name, w, h, inside, fill, visibility in measured:
        assert w >= 8 and h >= 8, name
        assert inside, name
        assert fill not in ("none", "") and visibility == "visible", name


def test_one_configured_candidate_is_described_in_one_line() -> None:
    """A single [[candidates]] entry with its own prompt: no Candidates section, its configuration in a line."""
    from equiv.schema import CandidateVerdict

    v = make_verdict()
    v.candidates = [
        CandidateVerdict(
            name="mini <b>tuned</b>",
            model=v.candidate,
            verdict=v.verdict,
            prompt_types=v.prompt_types,
            params={"max_tokens": 120},
            system_prompt_sha256="ab" * 32,
        )
    ]
    v.recommended = {tv.prompt_type: None for tv in v.prompt_types}
    md = render_markdown(v)
    assert "**Candidates**" not in md
    assert (
        "Candidate configuration mini &lt;b&gt;tuned&lt;/b&gt;: gpt-4o-mini · params max\\_tokens=120 · "
        "system prompt sha256 abababababab"
    ) in md
    page = render_html(v, make_pairs(10), make_run_info())
    assert '<section id="candidates">' not in page
    assert (
        "mini &lt;b&gt;tuned&lt;/b&gt; (gpt-4o-mini) · params max_tokens=120 · system prompt sha256 abababababab"
        in page
    )
    assert "recommended" not in terminal(v)
