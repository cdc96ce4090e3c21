"""Every report shows what the evaluation spent (verdict.json `eval_cost`), where a --sequential test stopped
(`TypeVerdict.sequential`) and, for the held-out run of `equiv optimize`, what the search found (run.json
`optimize`), as the analysis and the run recorded them: the reports read those figures, they compute none.

Two real runs (the simulated fake/* models through litellm, no network): a --sequential comparison whose
candidate is far worse (every type stops early, NO_GO), and `equiv optimize` on the fixtures (a GO on held-out
prompts, whose spend is set against the first month's projected saving). Every figure the tests look for is read
from those runs' verdict.json / run.json; the hostile-prompt case is the real run's info with its prompts replaced.
"""

from __future__ import annotations

import copy
import difflib
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import equiv
from equiv.cli import _register, app
from equiv.report.html import render_html
from equiv.report.markdown import fmt_interval, fmt_usd, md_text, render_markdown
from equiv.report.spend import eval_cost_text, fmt_share, sequential_text
from equiv.report.terminal import print_verdict
from equiv.schema import Check, EvalCost, Pair, SequentialSummary, Verdict

from . import chromium
from .factory import make_pairs, make_run_info, make_verdict

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"

SEQ_CONFIG = """
baseline = "fake/skill-99"
candidate = "fake/skill-60"
judge = "fake/judge"
per_type = 100
bootstrap = 500
[models."fake/skill-99"]
input_cost_per_mtok = 2.50
output_cost_per_mtok = 10.00
[models."fake/skill-60"]
input_cost_per_mtok = 0.15
output_cost_per_mtok = 0.60
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
def seq(tmp_path_factory: pytest.TempPathFactory) -> Run:
    from tests.integration.conftest import make_records

    folder = tmp_path_factory.mktemp("sequential")
    traffic = folder / "traffic.jsonl"
    traffic.write_text("".join(json.dumps(r) + "\n" for r in make_records(["good", "bad"], 100, baseline="skill-99")))
    config = folder / "equiv.toml"
    config.write_text(SEQ_CONFIG)
    result = equiv.compare(traffic, config=config, sequential=True, out=folder / "reports")
    assert result.aborted is None
    return Run(Path(result.run_dir))


@pytest.fixture(scope="module")
def opt(tmp_path_factory: pytest.TempPathFactory) -> Run:
    pytest.importorskip("gepa")
    folder = tmp_path_factory.mktemp("optimize")
    _register()
    args = ["optimize", str(FIXTURES / "traffic.jsonl"), "--config", str(FIXTURES / "equiv.toml")]
    args += ["--candidate", "mini", "--types", "ticket-triage", "--budget-usd", "2", "--reflection-model"]
    args += ["fake/reflect", "--out", str(folder / "reports"), "--prompts", str(folder / "prompts"), "-q"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    (run_dir,) = [p for p in (folder / "reports").iterdir() if not p.name.startswith("optimize-")]
    return Run(run_dir)


def terminal(verdict: Verdict, width: int = 200) -> str:
    buf = io.StringIO()
    print_verdict(verdict, Console(file=buf, width=width, color_system=None), run_dir="/r")
    return buf.getvalue()


def section(page: str, start: str, end: str = "</section>") -> str:
    i = page.index(start)
    return page[i : page.index(end, i)]


class _Table(HTMLParser):
    """The text of every cell, row by row, of the HTML given (one table)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[str]]:
    parser = _Table()
    parser.feed(html)
    return parser.rows


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def text_of(html: str) -> str:
    """The text of some HTML as a reader sees it (entities decoded, whitespace collapsed)."""
    parser = _Text()
    parser.feed(html)
    return " ".join("".join(parser.chunks).split())


def seq_sentence(s: SequentialSummary) -> str:
    """What the tests expect, from the verdict's own numbers."""
    return (
        f"stopped at prompt {s.stopped_at} of {s.n_available} ({s.decided_by}, e-value {s.e_value:.3g} "
        f">= 1/alpha {1 / s.alpha:.3g})"
    )


# ---------------------------------------------------------------------------------------------
# the runs


def test_the_runs_are_what_the_reports_are_tested_on(seq: Run, opt: Run) -> None:
    ec = seq.verdict.eval_cost
    assert ec is not None and ec.pairs_bought < ec.pairs_fixed_n and ec.fixed_n_realtime_usd > ec.usd
    assert ec.first_month_saving_usd is None  # no GO
    for tv in seq.verdict.prompt_types:
        assert tv.sequential is not None and tv.sequential.decided_by == "NO_GO"
        assert tv.sequential.stopped_at < tv.sequential.n_available
    ec = opt.verdict.eval_cost
    assert ec is not None and ec.share_of_first_month_saving is not None and ec.first_month_saving_usd is not None
    assert opt.info["optimize"]["prompt_type"] == "ticket-triage" and opt.info["optimize"]["diff"]


# ---------------------------------------------------------------------------------------------
# the eval-cost line


def test_terminal_extends_the_evaluation_cost_with_the_fixed_n_design_and_why_no_share(seq: Run) -> None:
    v = seq.verdict
    ec = v.eval_cost
    assert ec is not None and v.eval_cost_usd is not None
    out = " ".join(terminal(v).split())
    assert (
        f"Overall: NO_GO evaluation cost ${v.eval_cost_usd:.4f} (fixed-n design: {fmt_usd(ec.fixed_n_realtime_usd)}, "
        f"{ec.pairs_fixed_n} pairs; this run bought {ec.pairs_bought}); "
        "no projected saving to set it against (no prompt-type is a GO)"
    ) in out
    narrow = terminal(v, 80)
    assert all(len(line) <= 80 for line in narrow.splitlines())


def test_terminal_sets_the_spend_against_the_first_months_saving(opt: Run) -> None:
    v = opt.verdict
    ec = v.eval_cost
    assert ec is not None and ec.share_of_first_month_saving is not None and ec.first_month_saving_usd is not None
    out = " ".join(terminal(v).split())
    share = ec.share_of_first_month_saving
    assert f"{share * 100:.0f}%" == fmt_share(share)  # above 10% here: whole percent
    assert (
        f"Overall: GO evaluation cost ${v.eval_cost_usd:.4f}; {share * 100:.0f}% of the first month's projected "
        f"saving of {fmt_usd(ec.first_month_saving_usd)}"
    ) in out
    assert "fixed-n design" not in out  # a fixed-n run: its design is this run's


def test_summary_has_the_eval_cost_line(seq: Run, opt: Run) -> None:
    for run in (seq, opt):
        assert run.summary == render_markdown(run.verdict, run.info)  # what the run wrote is what it renders
    ec = seq.verdict.eval_cost
    assert ec is not None
    assert (
        f"Evaluation cost: {fmt_usd(ec.usd)} spent (fixed-n design: {fmt_usd(ec.fixed_n_realtime_usd)}, "
        f"{ec.pairs_fixed_n} pairs; this run bought {ec.pairs_bought}); no projected saving to set it against "
        "(no prompt-type is a GO).\n"
    ) in seq.summary
    ec = opt.verdict.eval_cost
    assert ec is not None and ec.share_of_first_month_saving is not None
    assert (
        f"Evaluation cost: {fmt_usd(ec.usd)} spent; {fmt_share(ec.share_of_first_month_saving)} of the first "
        f"month's projected saving of {fmt_usd(ec.first_month_saving_usd)}.\n"
    ) in opt.summary


def test_html_cost_section_has_the_eval_cost_line(seq: Run, opt: Run) -> None:
    for run in (seq, opt):
        ec = run.verdict.eval_cost
        assert ec is not None
        line = text_of(section(run.page, '<p class="eval-line"', "</p>") + "</p>")
        assert line == f"Evaluation cost: {eval_cost_text(run.verdict)}."
        assert line.startswith(f"Evaluation cost: {fmt_usd(ec.usd)} spent")
        assert 'id="eval-cost"' in section(run.page, '<section id="cost">')
    seq_line = section(seq.page, '<p class="eval-line"', "</p>")
    ec = seq.verdict.eval_cost
    assert ec is not None and f"{ec.pairs_fixed_n} pairs; this run bought {ec.pairs_bought}" in seq_line


def test_eval_cost_wording_for_each_case() -> None:
    v = make_verdict()
    assert v.verdict == "NO_GO" and any(tv.verdict == "GO" for tv in v.prompt_types)
    v.eval_cost = EvalCost(
        usd=0.30,
        fixed_n_realtime_usd=0.33,
        pairs_bought=360,
        pairs_fixed_n=400,
        first_month_saving_usd=75.0,
        share_of_first_month_saving=0.004,
    )
    assert eval_cost_text(v) == (
        "$0.300 spent (fixed-n design: $0.330, 400 pairs; this run bought 360); "
        "0.4% of the first month's projected saving of $75.00"
    )
    v.eval_cost = v.eval_cost.model_copy(update={"first_month_saving_usd": None, "share_of_first_month_saving": None})
    assert eval_cost_text(v) == (
        "$0.300 spent (fixed-n design: $0.330, 400 pairs; this run bought 360); no projected saving to set it "
        "against (no traffic volume to project the GO types' saving)"
    )
    v.eval_cost = v.eval_cost.model_copy(update={"fixed_n_realtime_usd": 0.30, "pairs_bought": 400})
    assert eval_cost_text(v) == (
        "$0.300 spent; no projected saving to set it against (no traffic volume to project the GO types' saving)"
    )
    assert (fmt_share(0.25), fmt_share(0.004), fmt_share(0.0004), fmt_share(3.0)) == ("25%", "0.4%", "<0.1%", "300%")


# ---------------------------------------------------------------------------------------------
# sequential


def test_terminal_says_where_each_type_stopped(seq: Run) -> None:
    out = terminal(seq.verdict)
    for tv in seq.verdict.prompt_types:
        assert tv.sequential is not None
        assert f"sequential ({tv.prompt_type}): {seq_sentence(tv.sequential)}\n" in out


def test_summary_says_where_each_type_stopped(seq: Run) -> None:
    part = seq.summary.split("**Sequential test**")[1].split("**Notes**")[0]
    for tv in seq.verdict.prompt_types:
        assert tv.sequential is not None
        assert f"- {tv.prompt_type}: {md_text(seq_sentence(tv.sequential), None)}\n" in part
    assert "NO\\_GO, e-value" in part and "&gt;= 1/alpha 20" in part  # md_text: nothing live


def test_html_has_a_sequential_table_by_the_intervals(seq: Run) -> None:
    forest = section(seq.page, '<section id="forest">')
    assert 'id="sequential"' in forest
    rows = table_rows(section(forest, '<table class="compact seq">', "</table>"))[1:]
    expected = [
        [
            tv.prompt_type,
            tv.verdict,
            f"{tv.sequential.stopped_at} of {tv.sequential.n_available}",
            str(tv.sequential.decided_by),
            f"{tv.sequential.e_value:.3g}",
            f"{1 / tv.sequential.alpha:.3g}",
        ]
        for tv in seq.verdict.prompt_types
        if tv.sequential is not None
    ]
    assert rows == expected and len(rows) == 2
    for tv in seq.verdict.prompt_types:
        assert tv.sequential is not None
        assert f'title="{seq_sentence(tv.sequential).replace(">", "&gt;")}"' in forest


def test_undecided_wording() -> None:
    s = SequentialSummary(stopped_at=200, decided_by=None, e_value=4.1, n_available=200, alpha=0.05)
    assert sequential_text(s) == "undecided after 200 prompts (largest e-value 4.1 < 20)"
    s = SequentialSummary(stopped_at=52, decided_by="NO_GO", e_value=31.2, n_available=200, alpha=0.05)
    assert sequential_text(s) == "stopped at prompt 52 of 200 (NO_GO, e-value 31.2 >= 1/alpha 20)"
    v = make_verdict()
    v.prompt_types[2].sequential = SequentialSummary(
        stopped_at=150, decided_by=None, e_value=4.1, n_available=200, alpha=0.05
    )
    name = v.prompt_types[2].prompt_type
    assert f"sequential ({name}): undecided after 150 of 200 prompts (largest e-value 4.1 < 20)" in terminal(v)
    assert f"- {md_text(name)}: undecided after 150 of 200 prompts (largest e-value 4.1 &lt; 20)" in render_markdown(v)
    rows = table_rows(section(render_html(v, make_pairs(10)), '<table class="compact seq">', "</table>"))
    assert rows[1][:5] == [name, v.prompt_types[2].verdict, "150 of 200", "undecided", "4.1"]


def test_several_candidates_sequential_is_per_candidate() -> None:
    """Each candidate x type has its own test: labelled with its candidate (a type no candidate has drawn on
    the frontier, e.g. one without pairs or costs, still renders)."""
    from equiv.schema import CandidateVerdict

    v = make_verdict()
    s = SequentialSummary(stopped_at=40, decided_by="GO", e_value=25.0, n_available=200, alpha=0.05)
    tvs = [tv.model_copy(update={"sequential": s}) for tv in v.prompt_types]
    v.candidates = [
        CandidateVerdict(name="a", model="m1", verdict="GO", prompt_types=tvs),
        CandidateVerdict(name="b<x>", model="m2", verdict="NO_GO", prompt_types=v.prompt_types),
    ]
    v.recommended = {tv.prompt_type: "a" for tv in v.prompt_types}
    t = v.prompt_types[0].prompt_type
    assert f"sequential ({t} (a)): {seq_sentence(s)}" in terminal(v)
    assert f"- {t} (a): {md_text(seq_sentence(s), None)}" in render_markdown(v)
    rows = table_rows(section(render_html(v, make_pairs(5)), '<table class="compact seq">', "</table>"))
    assert rows[0][1] == "Candidate" and len(rows) == 1 + len(tvs)
    assert rows[1] == [t, "a", v.prompt_types[0].verdict, "40 of 200", "GO", "25", "20"]


# ---------------------------------------------------------------------------------------------
# equiv optimize


def test_html_optimize_section_shows_the_splits_the_search_and_the_heldout_verdict(opt: Run) -> None:
    o = opt.info["optimize"]
    page = opt.page
    assert '<a href="#optimize">Optimized prompt</a>' in page
    part = section(page, '<section id="optimize">')
    assert "<h2>Optimized prompt</h2>" in part
    splits = table_rows(section(part, '<table class="compact splits">', "</table>"))[1:]
    sp = o["splits"]
    assert [r[:2] for r in splits] == [
        ["train", str(sp["train"])],
        ["validation", str(sp["val"])],
        ["held-out", str(sp["heldout"])],
    ]
    assert [r[2] for r in splits] == [sp["ids_sha256"][k][:12] for k in ("train", "val", "heldout")]
    assert text_of(sp["method"]) in text_of(part)
    scores = table_rows(section(part, '<table class="compact scores">', "</table>"))[1:]
    s = o["search"]
    assert scores == [
        ["seed prompt", f"{s['seed']['train']:.3f}", f"{s['seed']['val']:.3f}"],
        ["optimized prompt", f"{s['best']['train']:.3f}", f"{s['best']['val']:.3f}"],
    ]
    assert "0.5 = as good as the baseline" in part
    text = text_of(part)
    assert f"{s['candidates_tried']} prompts tried, {s['evaluations']} evaluations" in text
    assert f"{fmt_usd(s['spend_usd'])} spent of the {fmt_usd(s['search_cap_usd'])} search cap" in text
    tv = next(t for t in opt.verdict.prompt_types if t.prompt_type == o["prompt_type"])
    held = text_of(section(part, '<p class="heldout">', "</p>"))
    assert held.startswith(f"{tv.verdict} on {tv.n} held-out pairs · quality diff {fmt_interval(tv.quality_diff)}")
    assert f'<span class="badge {tv.verdict.lower()}">{tv.verdict}</span>' in part
    assert o["prompt_file"] in text and o["reflection_model"] in text


def test_html_optimize_diff_is_line_by_line(opt: Run) -> None:
    diff = opt.info["optimize"]["diff"]
    part = section(opt.page, '<section id="optimize">')
    shown = re.findall(r'<span class="dl (\w+)">(.*?)</span>', section(part, '<pre class="diff"', "</pre>"), re.S)
    lines = diff.split("\n")
    assert len(shown) == len(lines)
    kinds = [k for k, _ in shown]
    assert kinds[:3] == ["file", "file", "hunk"]
    for (kind, html), line in zip(shown, lines, strict=True):
        assert text_of(html) == " ".join(line.split())
        if kind in ("add", "del"):
            assert line[0] == ("+" if kind == "add" else "-")
    assert "add" in kinds and "del" in kinds
    assert ".dl.add{background:var(--go-bg)" in opt.page and ".dl.del{background:var(--no-bg)" in opt.page
    assert "pre.diff{white-space:pre-wrap" in opt.page


def test_summary_has_a_short_optimize_section_without_the_prompts(opt: Run) -> None:
    o = opt.info["optimize"]
    part = opt.summary.split("**Optimized prompt**")[1]
    sp, s = o["splits"], o["search"]
    tv = next(t for t in opt.verdict.prompt_types if t.prompt_type == o["prompt_type"])
    assert f"- Held-out verdict: **{tv.verdict}** on {tv.n} pairs" in part
    assert f"quality diff {fmt_interval(tv.quality_diff)}" in part
    assert f"- Splits: train {sp['train']}, validation {sp['val']}, held-out {sp['heldout']}" in part
    assert (
        f"seed prompt train {s['seed']['train']:.3f} / validation {s['seed']['val']:.3f}; "
        f"optimized train {s['best']['train']:.3f} / validation {s['best']['val']:.3f}"
    ) in part
    assert f"{fmt_usd(s['spend_usd'])} spent of the {fmt_usd(s['search_cap_usd'])} search cap" in part
    assert md_text(o["prompt_file"]) in part
    assert o["system_prompt"][:40] not in opt.summary and o["seed_prompt"][:40] not in opt.summary  # model text


HOSTILE_SEED = "Triage tickets.\n<script>document.title='PWNED-seed'</script>\n-- keep this line"
HOSTILE_BEST = "Triage tickets.\n<img src=x onerror=\"document.title='PWNED-best'\">\n--- and this one | `x` *y*"


def hostile_info(info: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(info)
    o = out["optimize"]
    o["seed_prompt"], o["system_prompt"] = HOSTILE_SEED, HOSTILE_BEST
    o["diff"] = "\n".join(
        difflib.unified_diff(
            HOSTILE_SEED.splitlines(), HOSTILE_BEST.splitlines(), "seed prompt", "optimized prompt", lineterm=""
        )
    )
    o["cautions"] = ["the reflection model is from the judge's family <b>x</b>"]
    o["prompt_file"] = "prompts/<svg onload=alert(1)>.json"
    return out


def test_hostile_prompts_in_the_optimize_section_are_escaped(opt: Run) -> None:
    info = hostile_info(opt.info)
    page = render_html(opt.verdict, opt.pairs, info, opt.checks)
    part = section(page, '<section id="optimize">')
    assert "<script>document" not in page and "<img src=x" not in page and "<svg onload" not in page
    assert "&lt;script&gt;document.title=&#39;PWNED-seed&#39;&lt;/script&gt;" in part
    assert "&lt;img src=x onerror=&#34;document.title=&#39;PWNED-best&#39;&#34;&gt;" in part
    assert "<b>x</b>" not in part and "&lt;b&gt;x&lt;/b&gt;" in part  # the caution, escaped
    assert page.count("<script") == 1  # the page's own filter script only
    shown = re.findall(r'<span class="dl (\w+)">(.*?)</span>', section(part, '<pre class="diff"', "</pre>"), re.S)
    kinds = dict((text_of(h), k) for k, h in shown)
    assert kinds["+--- and this one | `x` *y*"] == "add"  # inside a hunk: an added line, not a file header
    assert kinds["--- keep this line"] == "del"
    md = render_markdown(opt.verdict, info)
    assert "<svg" not in md and "<b>" not in md and "PWNED" not in md
    assert "- Caution: the reflection model is from the judge's family &lt;b&gt;x&lt;/b&gt;" in md


@pytest.mark.browser
@pytest.mark.skipif(
    not chromium.available() and not os.environ.get("EQUIV_REQUIRE_BROWSER"), reason="needs /usr/bin/chromium"
)
def test_hostile_optimize_section_runs_nothing_in_chromium(opt: Run, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(opt.verdict, opt.pairs, hostile_info(opt.info), opt.checks), encoding="utf-8")
    dom, console = chromium.dump_dom(page, tmp_path / "profile")
    assert console == []
    assert "PWNED" not in dom.split("</title>")[0] and dom.count("<script") == 1
    assert '<section id="optimize">' in dom


# ---------------------------------------------------------------------------------------------
# older verdicts: as before


def test_old_verdicts_render_as_before(seq: Run) -> None:
    v = make_verdict()
    assert v.eval_cost is None and all(tv.sequential is None for tv in v.prompt_types)
    out = terminal(v, 80)
    assert "Overall: NO_GO   evaluation cost $4.8700\n" in out and "sequential" not in out
    md = render_markdown(v, make_run_info())
    assert "Evaluation cost:" not in md and "**Sequential test**" not in md and "**Optimized prompt**" not in md
    page = render_html(v, make_pairs(10), make_run_info())
    for marker in ('id="eval-cost"', 'id="sequential"', 'id="optimize"', 'href="#optimize"'):
        assert marker not in page
    # a real verdict.json without the new keys: the same reports minus exactly the new lines
    raw = json.loads((seq.path / "verdict.json").read_text())
    raw.pop("eval_cost")
    for t in raw["prompt_types"]:
        t.pop("sequential")
    old = Verdict.model_validate(raw)
    md_new, md_old = render_markdown(seq.verdict, seq.info), render_markdown(old, seq.info)
    lines = md_new.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("Evaluation cost: "))
    del lines[i : i + 2]  # the eval-cost line and its blank line
    i = next(k for k, line in enumerate(lines) if line.startswith("**Sequential test**"))
    assert all(line.endswith(")") for line in lines[i + 2 : i + 2 + len(old.prompt_types)])
    del lines[i - 1 : i + 2 + len(old.prompt_types)]  # the blank line, the title, a blank line, one line per type
    assert "\n".join(lines) + "\n" == md_old
    out_old = terminal(old)
    assert "sequential (" not in out_old and f"evaluation cost ${old.eval_cost_usd:.4f}\n" in out_old
