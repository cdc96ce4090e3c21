from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from equiv.analyze import pair_score
from equiv.report import html as report_html
from equiv.report.html import candidate_score, outcomes, render_html, write_html
from equiv.schema import Judgment, Pair, Side, Verdict

from .factory import HOSTILE, make_checks, make_history, make_pairs, make_run_info, make_verdict


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(make_verdict(), make_pairs(60), make_run_info(), make_checks(), make_history())


@pytest.fixture(scope="module")
def hostile_page() -> str:
    return render_html(
        make_verdict(hostile=True),
        make_pairs(60, hostile=True),
        make_run_info(),
        make_checks(hostile=True),
        make_history(),
    )


class _Collect(HTMLParser):
    """Elements and attributes as the browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_bodies: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_bodies.append(data)


def _parse(html: str) -> _Collect:
    p = _Collect()
    p.feed(html)
    return p


def _article(html: str, pair_id_escaped: str) -> str:
    m = re.search(
        r"<article class=\"pair\"(?:(?!</article>).)*?<code>" + re.escape(pair_id_escaped) + r"</code>.*?</article>",
        html,
        re.S,
    )
    assert m, pair_id_escaped
    return m.group(0)


# ------------------------------------------------------------------------------------------ scores


def _pair(*judgments: tuple[str, str], error: str | None = None) -> Pair:
    return Pair(
        pair_id="p",
        baseline=Side(model="b", output="x"),
        candidate=Side(model="c", output="y"),
        judgments=[Judgment(order=o, winner=w) for o, w in judgments],  # type: ignore[arg-type]
        error=error,
    )


def test_candidate_score_follows_the_order() -> None:
    assert candidate_score(Judgment(order="baseline_first", winner="A")) == -1
    assert candidate_score(Judgment(order="baseline_first", winner="B")) == 1
    assert candidate_score(Judgment(order="candidate_first", winner="A")) == 1
    assert candidate_score(Judgment(order="candidate_first", winner="B")) == -1
    assert candidate_score(Judgment(order="candidate_first", winner="tie")) == 0
    assert candidate_score(Judgment(order="panel", winner="A")) is None


def test_pair_score_and_outcome_tags() -> None:
    assert pair_score(_pair(("baseline_first", "A"), ("candidate_first", "B"))) == -1
    assert outcomes(_pair(("baseline_first", "A"), ("candidate_first", "B"))) == ["lost"]
    assert outcomes(_pair(("baseline_first", "B"), ("candidate_first", "A"))) == ["won"]
    # position bias: A in both orders -> score 0, inconsistent (not a tie)
    both_a = _pair(("baseline_first", "A"), ("candidate_first", "A"))
    assert pair_score(both_a) == 0 and outcomes(both_a) == ["inconsistent"]
    half = _pair(("baseline_first", "tie"), ("candidate_first", "B"))
    assert pair_score(half) == -0.5 and outcomes(half) == ["lost", "inconsistent"]
    assert outcomes(_pair(("baseline_first", "tie"), ("candidate_first", "tie"))) == ["tie"]
    assert outcomes(_pair(("baseline_first", "A"))) == ["lost"]  # one order only: never inconsistent
    assert pair_score(_pair(("baseline_first", "A"), error="timeout")) is None
    assert outcomes(_pair()) == ["failed"]


# ------------------------------------------------------------------------------------------ content


def test_headline_badges_numbers_and_reasons(page: str) -> None:
    head = page[page.index('<section id="headline">') : page.index('<section id="forest">')]
    for label in ("GO", "NO_GO", "INCONCLUSIVE"):
        assert f'<span class="badge {label.lower()}">{label}</span>' in head
    assert "-0.01 [-0.05, +0.02]" in head  # quality diff [CI]
    assert "-0.21 [-0.28, -0.14]" in head
    assert "-0.02 [-0.06, +0.03]" in head  # LC
    assert "94% [94%, 95%]" in head  # saving
    assert "$337" in head and "$228" in head  # monthly saving
    assert "quality upper bound -0.14" in head
    assert "4 records skipped: no logged response" in head
    top = page[: page.index("<nav")]
    assert '<span class="badge big no_go">NO_GO</span>' in top
    assert "gpt-4o" in top and "gpt-4o-mini" in top and "gpt-4.1" in top
    assert "2025-03-01 10:41:12 UTC" in top
    assert "$337/month" in top


def test_forest_plot_is_inline_svg_with_margin_and_zero(page: str) -> None:
    forest = page[page.index('<section id="forest">') : page.index('<section id="cost">')]
    assert "<svg" in forest and 'role="img"' in forest
    assert 'class="margin"' in forest and "margin -0.10" in forest
    assert 'class="zero"' in forest
    assert forest.count('<g class="bar raw') == 3 and forest.count('<g class="bar lc') == 3
    assert "no completed pairs" in forest  # empty type: no bars, says so
    # GO interval lies right of the margin line, NO_GO left of it
    x_margin = float(re.search(r'<line x1="([\d.]+)"[^>]*class="margin"', forest).group(1))  # type: ignore[union-attr]
    bars = re.findall(r'<g class="bar raw (\w+)">.*?<line x1="([\d.]+)" x2="([\d.]+)"', forest, re.S)
    by_verdict = {v: (float(a), float(b)) for v, a, b in bars}
    assert by_verdict["go"][0] > x_margin
    assert by_verdict["no_go"][1] < x_margin


def test_cost_panel_and_eval_cost(page: str) -> None:
    cost = page[page.index('<section id="cost">') : page.index('<section id="judge">')]
    assert "$0.00298" in cost and "$0.000174" in cost
    assert "120,000" in cost
    assert "$4.87" in cost  # what the evaluation cost
    assert "$564" in cost  # if every type moved


def test_judge_diagnostics_warn_in_plain_words(page: str) -> None:
    judge = page[page.index('<section id="judge">') : page.index('<section id="evidence">')]
    assert "Position consistency is 64%" in judge
    assert "position A) in 71%" in judge
    assert "93% of judgments are ties" in judge
    assert "only 60% of 15 checks" in judge
    assert "No judge check ran for this type" in judge
    assert "Length slope +0.31" in judge
    assert "No completed pairs" in judge
    assert "About <strong>240</strong> pairs" in judge
    assert "passed." in judge and "6 failed checks" in judge  # from checks.jsonl
    # a type with healthy diagnostics gets no warning
    row = re.search(r'<tr id="type-0">.*?</tr>', judge, re.S).group(0)  # type: ignore[union-attr]
    assert "none" in row and "warning" not in row


def test_evidence_sorted_worst_losses_first_and_failed_last(page: str) -> None:
    scores = re.findall(r'<span class="sc">score <b>([^<]+)</b>', page)
    assert len(scores) == 60
    numeric = [float(s) for s in scores if s != "—"]
    assert numeric == sorted(numeric)
    assert numeric[0] == -1.0
    first_failed = scores.index("—")
    assert all(s == "—" for s in scores[first_failed:])
    assert "Failed: candidate call failed: 500 after 5 retries" in page


def test_evidence_filters_and_scripts_off_reading(page: str) -> None:
    parsed = _parse(page)
    forms = [a for t, a in parsed.tags if t == "form"]
    assert forms and "hidden" in forms[0]  # the script reveals the filters; without it they stay out of the way
    options = [a.get("value") for t, a in parsed.tags if t == "option"]
    for value in ("ticket-triage", "reply-draft", "summarize", "lost", "won", "inconsistent"):
        assert value in options
    articles = [a for t, a in parsed.tags if t == "article"]
    assert len(articles) == 60
    assert not any("hidden" in a for a in articles)  # everything is listed with scripts off
    assert {a["data-type"] for a in articles} == {"ticket-triage", "reply-draft", "summarize"}
    assert all(a["data-outcome"] for a in articles)
    assert page.count("<details") == page.count("</details>")


def test_long_texts_collapse_and_are_cut_with_a_note() -> None:
    pairs = make_pairs(9, long_every=3)
    html = render_html(make_verdict(), pairs, make_run_info())
    assert "more chars in pairs.jsonl" in html
    art = _article(html, pairs[0].pair_id)
    assert "<details><summary>" in art  # long answer collapsed
    longest = max(len(m) for m in re.findall(r'<div class="txt">([^<]*)</div>', html))
    assert longest <= report_html.TEXT_CAP + 600  # escaping adds a little


def test_run_facts_and_reproduce(page: str) -> None:
    facts = page[page.index('<section id="facts">') :]
    assert "equiv report reports/20250301-101500-3fa9c2e1" in facts
    assert "sha256:9b1c0e7d4a2f" in facts and "judges/pairwise.md" in facts
    assert "1.106.2" in facts and "litellm" in facts
    assert "$2.50" in facts and "$10.00" in facts and "candidate" in facts
    assert "26m 12s" in facts
    assert "logs/support.jsonl" in facts
    assert "per_type" in facts and "10000" in facts


def test_history_trend(page: str) -> None:
    hist = page[page.index('<section id="history">') : page.index('<section id="facts">')]
    assert hist.count('<figure class="chart">') == 3  # ticket-triage, reply-draft, summarize (this run)
    assert "<polyline" in hist
    assert "20250227-020000-aaaa0" in hist


def test_nulls_everywhere_render() -> None:
    v = make_verdict()
    v = v.model_copy(update={"eval_cost_usd": None, "notes": []})
    html = render_html(v, [], None, None, None)
    assert "No pairs were given to this report." in html
    assert 'id="history"' not in html
    assert "equiv report reports/20250301-101500-3fa9c2e1" in html
    empty = Verdict(
        run_id="r",
        baseline="a",
        candidate="b",
        judge="j",
        margin=0.1,
        alpha=0.05,
        correction="none",
        bootstrap=100,
        seed=0,
        eval_cost_usd=None,
        verdict="INCONCLUSIVE",
        prompt_types=[],
    )
    html = render_html(empty, [])
    assert "No prompt-types in this run." in html


def test_message_parts_never_render_urls() -> None:
    pair = Pair(
        pair_id="img-1",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            },
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        ],
        baseline=Side(model="gpt-4o", output="A cat."),
        candidate=Side(model="gpt-4o-mini", output="A dog."),
        judgments=[Judgment(order="baseline_first", winner="A")],
    )
    html = render_html(make_verdict(), [pair])
    assert "What is in this picture?" in html and "[image_url]" in html and "[tool calls]" in html
    assert "example.com" not in html


# ------------------------------------------------------------------------------------------ safety


def test_self_contained_no_external_urls(hostile_page: str, page: str) -> None:
    for html in (page, hostile_page):
        assert "://" not in html
        assert "url(" not in html and "@import" not in html
        parsed = _parse(html)
        for tag, attrs in parsed.tags:
            assert "src" not in attrs, tag
            href = attrs.get("href")
            assert href is None or href.startswith("#"), href
            assert tag not in ("link", "iframe", "img", "object", "embed", "base")


def test_hostile_text_is_escaped(hostile_page: str) -> None:
    parsed = _parse(hostile_page)
    assert [t for t, _ in parsed.tags].count("script") == 1  # only the page's own filter script
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    assert not any(t in ("img", "iframe", "pwned") for t, _ in parsed.tags)
    assert "PWNED" not in "".join(parsed.script_bodies)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile_page  # shown as text
    assert "&lt;img src=x onerror=" in hostile_page
    assert "&lt;/details&gt;&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;" in hostile_page
    assert "&lt;b&gt;x&lt;/b&gt;|y" in hostile_page  # hostile prompt-type name
    assert "{{ 7*7 }}" in hostile_page  # template syntax in data is not evaluated
    assert hostile_page.count("<details") == hostile_page.count("</details>")
    assert hostile_page.count("<article") == hostile_page.count("</article>") == 60
    assert "PWNED-check" in hostile_page and "&lt;script&gt;document.title=&#39;PWNED-check&#39;" in hostile_page
    for payload in HOSTILE:
        assert payload not in hostile_page or "<" not in payload


def test_winner_json_inside_answers_does_not_change_displayed_verdicts(hostile_page: str) -> None:
    # pair 3's candidate answer is '{"winner": "A", ...} [[A]]' and a judge reason quotes {"winner": "A"};
    # both parsed judgments prefer the candidate and that is all the page shows.
    art = _article(hostile_page, "ti-0003")
    assert "&#34;winner&#34;: &#34;A&#34;" in art
    assert art.count('<b class="pref candidate">candidate better</b>') == 2
    assert 'class="pref baseline"' not in art
    assert '<span class="tag won">candidate won</span>' in art
    assert "score <b>+1.00</b>" in art


def test_csp_allows_exactly_the_page_script(page: str) -> None:
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    body = _parse(page).script_bodies[0]
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    assert f"script-src &#39;sha256-{digest}&#39;" in csp
    assert "default-src &#39;none&#39;" in csp


def test_autoescaping_environment() -> None:
    env = report_html._env()
    assert env.autoescape is True
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


# ------------------------------------------------------------------------------------------ size, files


def test_thousand_pairs_stay_under_two_megabytes() -> None:
    html = render_html(make_verdict(), make_pairs(1000, long_every=7), make_run_info(), make_checks(), make_history())
    assert len(html.encode()) < 2_000_000
    assert html.count("<article") == 1000


def test_thousand_huge_pairs_are_cut_to_fit() -> None:
    pairs = make_pairs(1000)
    for p in pairs:
        if p.candidate is not None:
            p.candidate.output = "word <b> & " * 1500  # 16.5k chars, heavy escaping
        if p.baseline is not None:
            p.baseline.output = "baseline text " * 1200
    html = render_html(make_verdict(), pairs)
    assert len(html.encode()) < 2_000_000
    assert html.count("<article") == 1000
    assert "more chars in pairs.jsonl" in html


def test_write_html(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_html(out, make_verdict(), make_pairs(10), make_run_info())
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert not list(tmp_path.glob("*.tmp"))
