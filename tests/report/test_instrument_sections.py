"""The reports show the per-type instruments the analysis recorded (SPEC "Per-type instruments", "Judges").

A run directory is written as `equiv compare` leaves it (pairs.jsonl, checks.jsonl, human_labels.jsonl) with
an equiv.toml that declares `[types."triage"] checks = ["label"]` and a json + fields type, then analysed by
the real pipeline (`equiv.api.reanalyze`, the steps of `equiv report`). Every figure the tests look for is
taken from that analysis object, formatted by the reports' own formatters: nothing is hard-coded.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from equiv.analyze import Analysis
from equiv.api import Reanalysis, reanalyze
from equiv.cli import _register, app
from equiv.report.html import render_html
from equiv.report.instruments import fmt_plain_interval
from equiv.report.markdown import fmt_interval, fmt_pct, fmt_pct_interval, fmt_signed, md_text, render_markdown
from equiv.report.terminal import print_verdict
from equiv.schema import TypeVerdict, Verdict
from equiv.stats.decide import JUDGE_CHECK_MIN_PASS

from . import chromium

BASE, CAND = "gpt-4o", "gpt-4o-mini"
JUDGES = ("gpt-4.1", "claude-sonnet-4")  # gpt-4.1 is of the compared models' family: the family guard's caution
LABELS = ["billing", "technical", "account", "other"]
SCRIPT = "<script>document.title='PWNED-answer'</script>"
HOSTILE_FIELD = "<img src=x onerror=\"document.title='PWNED-field'\">"
N = 40


# ------------------------------------------------------------------------------------------ the run


def _judgments(rng: random.Random, p_candidate: float) -> list[dict[str, Any]]:
    """Both judges, both orders (a panel, SPEC "Judges")."""
    out = []
    for judge in JUDGES:
        for order in ("baseline_first", "candidate_first"):
            u = rng.random()
            pref = "candidate" if u < p_candidate else "tie" if u < p_candidate + 0.2 else "baseline"
            cand_pos, base_pos = ("B", "A") if order == "baseline_first" else ("A", "B")
            winner = {"candidate": cand_pos, "baseline": base_pos, "tie": "tie"}[pref]
            out.append({"order": order, "winner": winner, "judge": judge, "reason": f"{judge}: {pref} is better"})
    return out


def _side(model: str, output: str) -> dict[str, Any]:
    cost = 0.001 if model == BASE else 0.0001
    return {
        "model": model,
        "source": "run",
        "output": output,
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "cost_usd": cost,
    }


def _pair(pid: str, prompt_type: str, base: str, cand: str, judgments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "pair_id": pid,
        "prompt_type": prompt_type,
        "messages": [{"role": "user", "content": f"{prompt_type} request {pid}"}],
        "baseline": _side(BASE, base),
        "candidate": _side(CAND, cand),
        "judgments": judgments,
        "error": None,
    }


def _check(pid: str, prompt_type: str, kind: str, passed: bool) -> dict[str, Any]:
    """One judge-check comparison (checks.jsonl): intact_first / degraded_first."""
    first = "A" if passed else "B"
    return {
        "pair_id": pid,
        "prompt_type": prompt_type,
        "kind": kind,
        "judgments": [
            {"order": "intact_first", "winner": first, "judge": JUDGES[0]},
            {"order": "degraded_first", "winner": "B", "judge": JUDGES[0]},
        ],
        "judge_failures": [],
        "error": None,
    }


def write_instrumented_run(folder: Path, seed: int = 5) -> Path:
    """A run directory with a label type, a json + fields type, a judge panel, graded judge-check kinds and
    people's labels; returns its equiv.toml."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pairs, checks, labels = [], [], []
    for i in range(N):
        gold = rng.choice(LABELS)
        agree = rng.random() < 0.6 and i != 3
        cand = gold.title() + "." if agree else rng.choice([x for x in LABELS if x != gold])
        if i == 3:
            cand = f"billing {SCRIPT}"  # a model answer that is markup: disagrees, so it is judged and shown
        pid = f"tri-{i:03d}"
        pairs.append(_pair(pid, "triage", gold, cand, [] if agree else _judgments(rng, 0.3)))
        if not agree:
            labels.append({"pair_id": pid, "gold": rng.choice(["baseline", "tie", "candidate"])})
    for i in range(N):
        obj: dict[str, Any] = {
            "total": round(rng.uniform(10, 900), 2),
            "vendor": rng.choice(["Acme", "Globex"]),
            "date": f"2024-0{1 + i % 9}-1{i % 10}",
        }
        cand_obj: dict[str, Any] = dict(obj)
        if rng.random() < 0.3:
            cand_obj["vendor"] = "Umbrella"
        if rng.random() < 0.2:
            cand_obj["total"] = round(obj["total"] * 1.3, 2)
        if i == 7:
            cand_obj[HOSTILE_FIELD] = 1  # a JSON field name written by the model: shown in the per-field table
        text = json.dumps(cand_obj, separators=(",", ":") if i % 2 else None)  # the same object, written otherwise
        if i % 13 == 0:
            text = "Here is the invoice: " + text[:-1]  # not JSON: fails the json gate
        agree = cand_obj == obj and i % 13 != 0
        pairs.append(_pair(f"inv-{i:03d}", "invoice", json.dumps(obj), text, [] if agree else _judgments(rng, 0.2)))
    for t, kinds in (("triage", ("truncate", "label")), ("invoice", ("truncate", "broken_json", "number"))):
        for kind in kinds:
            for i in range(10):
                checks.append(_check(f"{t[:3]}-{i:03d}", t, kind, rng.random() < (0.4 if kind == "number" else 0.97)))
    (folder / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    (folder / "checks.jsonl").write_text("".join(json.dumps(c) + "\n" for c in checks), encoding="utf-8")
    (folder / "human_labels.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels), encoding="utf-8")
    config = folder / "equiv.toml"
    config.write_text(
        f'baseline = "{BASE}"\ncandidate = "{CAND}"\njudge = {json.dumps(list(JUDGES))}\nbootstrap = 500\n'
        '[types."triage"]\nchecks = ["label"]\n'
        '[types."invoice"]\nchecks = ["json", {kind = "fields", tolerance = 0.01}]\n',
        encoding="utf-8",
    )
    return config


def write_plain_run(folder: Path, seed: int = 9) -> Path:
    """A run as before instruments: one judge, no [types] tables, truncation checks only, no labels."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(N):
        judgments = [j for j in _judgments(rng, 0.4) if j["judge"] == JUDGES[1]]
        pairs.append(_pair(f"qa-{i:03d}", "qa", f"answer {i}", f"reply {i} {SCRIPT}", judgments))
    checks = [_check(f"qa-{i:03d}", "qa", "truncate", True) for i in range(10)]
    (folder / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    (folder / "checks.jsonl").write_text("".join(json.dumps(c) + "\n" for c in checks), encoding="utf-8")
    config = folder / "equiv.toml"
    config.write_text(f'baseline = "{BASE}"\ncandidate = "{CAND}"\njudge = "{JUDGES[1]}"\nbootstrap = 500\n')
    return config


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Reanalysis:
    folder = tmp_path_factory.mktemp("instrumented")
    return reanalyze(folder, config=write_instrumented_run(folder))


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Reanalysis:
    folder = tmp_path_factory.mktemp("plain")
    return reanalyze(folder, config=write_plain_run(folder))


def _html(r: Reanalysis) -> str:
    return render_html(r.analysis.verdict, r.pairs, r.info, r.checks, analysis=r.analysis)


def _terminal(verdict: Verdict) -> str:
    buf = io.StringIO()
    print_verdict(verdict, Console(file=buf, width=400, color_system=None))
    return buf.getvalue()


def _types(analysis: Analysis) -> dict[str, TypeVerdict]:
    return {tv.prompt_type: tv for tv in analysis.verdict.prompt_types}


@pytest.fixture(scope="module")
def page(run: Reanalysis) -> str:
    return _html(run)


# ------------------------------------------------------------------------------------------ reading the page


class _Tables(HTMLParser):
    """The tables of one element (by id): their class, caption and rows of (row class, cell texts)."""

    def __init__(self, element_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.element_id, self.depth = element_id, 0
        self.tables: list[dict[str, Any]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self.depth:
            self.depth += tag not in ("br", "img", "input", "meta")
        elif a.get("id") == self.element_id:
            self.depth = 1
            return
        if not self.depth:
            return
        if tag == "table":
            self.tables.append({"class": a.get("class") or "", "caption": "", "rows": []})
        elif tag == "caption":
            self._caption = []
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append({"class": a.get("class") or "", "cells": []})
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if not self.depth:
            return
        self.depth -= 1
        if tag == "caption" and self._caption is not None:
            self.tables[-1]["caption"] = " ".join("".join(self._caption).split())
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1]["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if not self.depth:
            return
        self.text.append(data)
        for sink in (self._cell, self._caption):
            if sink is not None:
                sink.append(data)


def _block(html: str, element_id: str) -> _Tables:
    p = _Tables(element_id)
    p.feed(html)
    assert p.depth == 0 and (p.tables or p.text), f"no element #{element_id}"
    return p


def _table(block: _Tables, cls: str) -> dict[str, Any]:
    (table,) = [t for t in block.tables if cls in t["class"].split()]
    return table


def _rows(table: dict[str, Any]) -> list[list[str]]:
    """Body rows' cells (the first row of a table with a header is its thead)."""
    rows = table["rows"]
    return [r["cells"] for r in (rows if "human" in table["class"] else rows[1:])]


def _instruments(page: str, analysis: Analysis, name: str) -> _Tables:
    idx = [tv.prompt_type for tv in analysis.verdict.prompt_types].index(name)
    return _block(page, f"instruments-{idx}")


# ------------------------------------------------------------------------------------------ the run itself


def test_the_run_has_every_instrument(run: Reanalysis) -> None:
    """The premise of what follows: the analysis recorded each kind of instrument figure."""
    by = _types(run.analysis)
    assert [c.name for c in by["triage"].checks or ()] == ["label"]
    assert [(c.name, c.kind) for c in by["invoice"].checks or ()] == [("json", "gate"), ("fields", "agreement")]
    for tv in by.values():
        assert tv.n_judged is not None and 0 < tv.n_judged < tv.n
        assert tv.judges and set(tv.judges) == set(JUDGES) and tv.panel_agreement is not None
        assert tv.judge_check is not None and tv.judge_check.by_kind
    assert by["triage"].human_agreement is not None and by["invoice"].human_agreement is None
    jc = by["invoice"].judge_check
    assert jc is not None and jc.by_kind
    assert any(not k.blocking and (k.pass_rate or 0) < JUDGE_CHECK_MIN_PASS for k in jc.by_kind.values())
    assert {r.decided_by for r in run.analysis.pairs} == {None, "identical", "agreement"}


# ------------------------------------------------------------------------------------------ HTML


def test_html_lists_every_check_with_the_analysis_figures(run: Reanalysis, page: str) -> None:
    assert '<section id="instruments">' in page and '<a href="#instruments">Instruments</a>' in page
    for tv in run.analysis.verdict.prompt_types:
        block = _instruments(page, run.analysis, tv.prompt_type)
        rows = _rows(_table(block, "checks"))
        assert len(rows) == len(tv.checks or ())
        for cells, c in zip(rows, tv.checks or (), strict=True):
            assert cells[:3] == [c.name, c.kind, str(c.n)]
            if c.kind == "gate":
                assert cells[3:6] == [
                    fmt_pct(c.baseline_pass_rate),
                    fmt_pct(c.candidate_pass_rate),
                    fmt_interval(c.diff, 3),
                ]
                assert cells[7] == ("fails: NO_GO" if c.failed else "passes" if c.passed else "not settled")
            else:
                assert cells[3:6] == ["", "", ""] and cells[6] == fmt_pct(c.agreement_rate)


def test_html_shows_the_per_field_table_of_a_fields_check(run: Reanalysis, page: str) -> None:
    tv = _types(run.analysis)["invoice"]
    (fields_check,) = [c for c in tv.checks or () if c.fields]
    table = _table(_instruments(page, run.analysis, "invoice"), "fields")
    assert fields_check.name in table["caption"]
    expected = [[name, str(f.n), fmt_pct(f.agreement_rate)] for name, f in (fields_check.fields or {}).items()]
    assert _rows(table) == expected
    assert HOSTILE_FIELD in fields_check.fields  # type: ignore[operator]  # the model's field name, shown as text
    assert not [t for t in _instruments(page, run.analysis, "triage").tables if "fields" in t["class"].split()]


def test_html_says_how_many_pairs_went_to_the_judge(run: Reanalysis, page: str) -> None:
    for tv in run.analysis.verdict.prompt_types:
        text = " ".join("".join(_instruments(page, run.analysis, tv.prompt_type).text).split())
        assert f"{tv.n_judged} of {tv.n} pairs" in text and "went to the judge" in text
        assert f"{fmt_pct(tv.agreement_rate)} of the traffic was decided without it" in text


def test_html_shows_the_panel_per_judge_and_its_kappa(run: Reanalysis, page: str) -> None:
    for tv in run.analysis.verdict.prompt_types:
        table = _table(_instruments(page, run.analysis, tv.prompt_type), "panel")
        assert fmt_plain_interval(tv.panel_agreement) in table["caption"] and "Fleiss" in table["caption"]
        rows = {r["cells"][0]: r for r in table["rows"][1:]}
        assert set(rows) == set(tv.judges or {})
        for name, d in (tv.judges or {}).items():
            cells = rows[name]["cells"]
            assert cells[1:8] == [
                str(d.n_judgments),
                str(d.n_failures),
                fmt_signed(d.quality_diff),
                fmt_pct(d.position_a_share),
                fmt_pct(d.position_consistency),
                fmt_pct(d.tie_rate),
                fmt_pct(d.agreement_with_panel),
            ]
            # the family guard's caution: the row of a judge from a compared model's family is marked
            assert ("caution" in rows[name]["class"]) == bool(d.same_family_as)
            assert all(role in cells[8] for role in d.same_family_as)
        assert any(d.same_family_as for d in (tv.judges or {}).values())


def test_html_shows_judge_check_kinds_with_the_caution_on_weak_ones(run: Reanalysis, page: str) -> None:
    for tv in run.analysis.verdict.prompt_types:
        assert tv.judge_check is not None and tv.judge_check.by_kind
        table = _table(_instruments(page, run.analysis, tv.prompt_type), "kinds")
        rows = {r["cells"][0]: r for r in table["rows"][1:]}
        assert list(rows) == list(tv.judge_check.by_kind)
        for kind, k in tv.judge_check.by_kind.items():
            assert rows[kind]["cells"][1:4] == [str(k.n), str(k.n_unreadable), fmt_pct(k.pass_rate)]
            weak = not k.blocking and k.pass_rate is not None and k.pass_rate < JUDGE_CHECK_MIN_PASS
            assert ("caution" in rows[kind]["class"]) == weak
            assert ("blocking" in rows[kind]["cells"][4]) == k.blocking
    # a weak kind is also a warning of its type, in the existing warning style
    for i, tv in enumerate(run.analysis.verdict.prompt_types):
        by_kind = tv.judge_check.by_kind if tv.judge_check is not None and tv.judge_check.by_kind else {}
        weak_kinds = [k for k, v in by_kind.items() if not v.blocking and (v.pass_rate or 0) < JUDGE_CHECK_MIN_PASS]
        warned = re.findall(
            r"<li><strong>Warning:</strong> Judge sensitivity &#39;([a-z_]+)&#39;",
            page.split(f'id="diag-{i}"')[1].split("</div>")[0],
        )
        assert warned == weak_kinds


def test_html_shows_human_agreement_where_there_are_labels(run: Reanalysis, page: str) -> None:
    tv = _types(run.analysis)["triage"]
    h = tv.human_agreement
    assert h is not None
    table = _table(_instruments(page, run.analysis, "triage"), "human")
    assert f"{h.n} labelled pairs" in table["caption"] and f"{h.n_without_ties} without a tie" in table["caption"]
    assert dict((r[0], r[1]) for r in _rows(table)) == {
        "Agreement without ties": fmt_pct_interval(h.agreement_without_ties),
        "Agreement": fmt_pct_interval(h.agreement),
        "Cohen's kappa": fmt_plain_interval(h.kappa),
        "Position consistency": fmt_pct_interval(h.position_consistency),
    }
    assert not [t for t in _instruments(page, run.analysis, "invoice").tables if "human" in t["class"].split()]


def test_each_pair_says_what_decided_it(run: Reanalysis, page: str) -> None:
    shown = dict(
        re.findall(
            r'<code>([^<]+)</code> <span class="pt">[^<]*</span> <span class="dec">decided by ([^<]+)</span>', page
        )
    )
    assert len(shown) == len(run.analysis.pairs)
    for r in run.analysis.pairs:
        names = ", ".join(a.name for a in r.instruments.agreements) if r.instruments else ""
        expected = {"identical": "identical", "agreement": f"agreement: {names}", None: "judge"}[r.decided_by]
        assert shown[r.pair_id] == expected, r.pair_id
    assert sum(v == "judge" for v in shown.values()) == sum(
        tv.n_judged or 0 for tv in run.analysis.verdict.prompt_types
    )
    assert "decided by agreement: label" in page and "decided by agreement: fields" in page


def test_gate_failures_are_named_on_the_pair(run: Reanalysis, page: str) -> None:
    failed = [r for r in run.analysis.pairs if r.instruments and any(not g.candidate for g in r.instruments.gates)]
    assert failed
    for r in failed:
        art = re.search(
            r'<article class="pair"(?:(?!</article>).)*?<code>' + re.escape(r.pair_id) + r"</code>.*?</article>",
            page,
            re.S,
        )
        assert art and '<span class="gate-fail">json: candidate fails' in art.group(0)


def test_model_text_stays_escaped(run: Reanalysis, page: str) -> None:
    assert SCRIPT not in page and HOSTILE_FIELD not in page
    assert "billing &lt;script&gt;document.title=&#39;PWNED-answer&#39;&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;document.title=&#39;PWNED-field&#39;&#34;&gt;" in page
    assert page.count("<script") == 1  # the page's own filter script only
    assert "<img" not in page
    md = render_markdown(run.analysis.verdict, run.info)
    assert "<script" not in md and "<img" not in md


def test_a_run_without_instruments_has_no_instruments_section(plain: Reanalysis) -> None:
    (tv,) = plain.analysis.verdict.prompt_types
    assert tv.checks is None and tv.judges is None and tv.panel_agreement is None and tv.human_agreement is None
    assert tv.judge_check is not None and tv.judge_check.by_kind is None
    html = _html(plain)
    assert 'id="instruments' not in html and 'href="#instruments"' not in html and "Instruments" not in html
    assert "decided by" not in html  # judged pairs of a type without checks read as they always did
    assert "Judge sensitivity" not in html
    assert SCRIPT not in html and "&lt;script&gt;document.title" in html
    md = render_markdown(plain.analysis.verdict, plain.info)
    assert "Instruments" not in md and "went to the judge" not in md
    out = _terminal(plain.analysis.verdict)
    assert "checks (" not in out and "judging (" not in out


# ------------------------------------------------------------------------------------------ summary.md, terminal


def test_markdown_tables_the_checks_and_lines_the_judging(run: Reanalysis) -> None:
    md = render_markdown(run.analysis.verdict, run.info)
    assert "**Instruments**" in md
    section = md[md.index("**Instruments**") : md.index("Reproduce:")]
    for tv in run.analysis.verdict.prompt_types:
        for c in tv.checks or ():
            (row,) = [
                line for line in section.splitlines() if line.startswith(f"| {md_text(tv.prompt_type)} | {c.name} |")
            ]
            if c.kind == "gate":
                for value in (fmt_pct(c.baseline_pass_rate), fmt_pct(c.candidate_pass_rate), fmt_interval(c.diff, 3)):
                    assert f" {value} |" in row
            else:
                assert f" {fmt_pct(c.agreement_rate)} |" in row
        (line,) = [x for x in section.splitlines() if x.startswith(f"- {md_text(tv.prompt_type)}: ")]
        assert f"{tv.n_judged} of {tv.n} pairs" in line and fmt_pct(tv.agreement_rate) in line
        assert md_text(fmt_plain_interval(tv.panel_agreement)) in line
        h = tv.human_agreement
        if h is not None:
            assert (
                md_text(fmt_pct_interval(h.agreement_without_ties)) in line
                and md_text(fmt_plain_interval(h.kappa)) in line
            )
        else:
            assert "judge-human" not in line


def test_terminal_prints_checks_and_judging_per_type(run: Reanalysis) -> None:
    out = _terminal(run.analysis.verdict)
    for tv in run.analysis.verdict.prompt_types:
        (checks,) = [x for x in out.splitlines() if x.startswith(f"checks ({tv.prompt_type}): ")]
        for c in tv.checks or ():
            if c.kind == "gate":
                assert (
                    f"{c.name}: baseline {fmt_pct(c.baseline_pass_rate)}, candidate {fmt_pct(c.candidate_pass_rate)}"
                    in checks
                )
                assert fmt_interval(c.diff, 3) in checks
            else:
                assert f"{c.name}: {fmt_pct(c.agreement_rate)} agree" in checks
        (judging,) = [x for x in out.splitlines() if x.startswith(f"judging ({tv.prompt_type}): ")]
        assert f"{tv.n_judged} of {tv.n} pairs" in judging and fmt_plain_interval(tv.panel_agreement) in judging
        if tv.human_agreement is not None:
            assert fmt_pct_interval(tv.human_agreement.agreement_without_ties) in judging


# ------------------------------------------------------------------------------------------ end to end


def test_equiv_report_writes_the_instruments_of_its_verdict(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    config = write_instrumented_run(folder)
    _register()
    r = CliRunner().invoke(app, ["report", str(folder), "--config", str(config), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    verdict = Verdict.model_validate_json((tmp_path / "out" / "verdict.json").read_text(encoding="utf-8"))
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    md = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert '<section id="instruments">' in html and "**Instruments**" in md
    for i, tv in enumerate(verdict.prompt_types):
        block = _block(html, f"instruments-{i}")
        cells = [
            row[6] if c.kind == "agreement" else row[5]
            for row, c in zip(_rows(_table(block, "checks")), tv.checks or (), strict=True)
        ]
        assert cells == [
            fmt_pct(c.agreement_rate) if c.kind == "agreement" else fmt_interval(c.diff, 3) for c in tv.checks or ()
        ]
        assert md_text(fmt_plain_interval(tv.panel_agreement)) in md
    assert f"checks ({verdict.prompt_types[0].prompt_type}): " in " ".join(r.output.split())


@pytest.mark.browser
@pytest.mark.skipif(
    not chromium.available() and not os.environ.get("EQUIV_REQUIRE_BROWSER"), reason="needs /usr/bin/chromium"
)
def test_instruments_section_is_visible_in_a_browser(run: Reanalysis, page: str, tmp_path: Path) -> None:
    # a probe (CSP dropped so it may run) writes what the browser laid out into the DOM that --dump-dom prints
    probe = (
        "<script>var s=document.getElementById('instruments'),r=s.getBoundingClientRect();"
        "var ts=s.querySelectorAll('.instr table');"
        "var shown=[].filter.call(ts,function(t){return t.getBoundingClientRect().height>0}).length;"
        "document.body.setAttribute('data-probe',[getComputedStyle(s).display,r.width>0&&r.height>0,"
        "s.querySelectorAll('.instr').length,shown,ts.length].join('|'));</script></body>"
    )
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page).replace("</body>", probe)
    target = tmp_path / "report.html"
    target.write_text(html, encoding="utf-8")
    dom, console = chromium.dump_dom(target, tmp_path / "profile")
    assert console == []
    probed = re.search(r'data-probe="([^"]+)"', dom)
    assert probed, dom[-2000:]
    display, laid_out, blocks, shown, tables = probed.group(1).split("|")
    assert display != "none" and laid_out == "true"
    assert int(blocks) == len(run.analysis.verdict.prompt_types) and int(shown) == int(tables) > 0
    assert "PWNED" not in dom.split("</title>")[0]
