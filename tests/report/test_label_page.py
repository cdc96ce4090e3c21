"""label.html in a real browser: blind, inert against hostile answers, keyboard labelling, resume, Save.

Drives Debian's /usr/bin/chromium (headless, --no-sandbox) through Playwright's own protocol client
(never `playwright install`: no browser download). Skipped where chromium or playwright is missing,
unless EQUIV_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from equiv.cli import _register, app
from equiv.label import left_side, sample
from equiv.schema import Pair
from equiv.store import RunDir

CHROMIUM = "/usr/bin/chromium"
REQUIRED = bool(os.environ.get("EQUIV_REQUIRE_BROWSER"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not REQUIRED, reason="needs /usr/bin/chromium"),
]

BASE_MODEL, CAND_MODEL, JUDGE = "gpt-4o-secret-base", "mini-secret-cand", "judge-secret-9"
HOSTILE = [
    "</script><script>window.pwned=1</script>",
    "<img src=x onerror=\"window.pwned=2;document.title='PWNED'\">",
    '</textarea><svg onload="window.pwned=3"></svg> & &lt;b&gt;',
]
TYPES = {"ticket-triage": 14, "reply-draft": 8, "summarize": 4}
N = 12  # fewer than the 26 labelable pairs: the sample is stratified
RUN_ID = "20250301-101500-label01"
# a Playwright init script (sent over the protocol, so the page's CSP does not apply to it): records
# every CSP violation the page reports
WATCH_CSP = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation', function (e) {"
    " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });"
)


def _rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    k = 0
    for ptype, count in TYPES.items():
        for i in range(count):
            hostile = HOSTILE[k % len(HOSTILE)]
            rows.append(
                {
                    "pair_id": f"{ptype[:2]}-{i:03d}",
                    "prompt_type": ptype,
                    "messages": [
                        {"role": "system", "content": "You help a support team."},
                        {"role": "user", "content": f"Ticket {k}: printer on fire. {HOSTILE[(k + 1) % len(HOSTILE)]}"},
                    ],
                    "baseline": {"model": BASE_MODEL, "source": "logged", "output": f"Answer L{k}: {hostile}"},
                    "candidate": {
                        "model": CAND_MODEL,
                        "source": "run",
                        "output": f"Answer R{k}: call the fire brigade",
                    },
                    "judgments": [
                        {"order": "baseline_first", "winner": "A", "judge": JUDGE, "reason": "reason-secret"}
                    ],
                    "error": None,
                }
            )
            k += 1
    rows.append({**rows[0], "pair_id": "same-1", "candidate": {**rows[0]["baseline"], "model": CAND_MODEL}})
    rows.append({**rows[1], "pair_id": "failed-1", "candidate": None, "error": "candidate call failed: 500"})
    return rows


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / RUN_ID
    run.mkdir()
    (run / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    (run / "run.json").write_text(json.dumps({"run_id": RUN_ID, "models": {BASE_MODEL: {}, CAND_MODEL: {}}}))
    _register()
    r = CliRunner().invoke(app, ["label", str(run), "--n", str(N), "--seed", "5"])
    assert r.exit_code == 0, r.output
    assert (run / "label.html").is_file()
    return run


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if REQUIRED:
            raise
        pytest.skip("needs playwright (pip install -e '.[test]')")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


class Page:
    """One page in a fresh browser context (its own localStorage), with its console and CSP reports."""

    def __init__(self, browser: Any, url: str, width: int = 1280) -> None:
        self.context = browser.new_context(accept_downloads=True, viewport={"width": width, "height": 900})
        self.context.add_init_script(WATCH_CSP)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.goto(url)

    def data(self) -> dict[str, Any]:
        return dict(self.page.evaluate("JSON.parse(document.getElementById('label-data').textContent)"))

    def progress(self) -> str:
        return str(self.page.inner_text("#progress-text"))

    def position(self) -> str:
        return str(self.page.inner_text("#item-pos"))

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__csp"))

    def assert_quiet(self) -> None:
        assert self.console == []  # no error, no warning, no CSP report, no uncaught exception
        assert self.csp_violations() == []

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    pages: list[Page] = []

    def opener(path: Path, width: int = 1280) -> Page:
        pages.append(Page(browser, path.resolve().as_uri(), width))
        return pages[-1]

    yield opener
    for p in pages:
        p.close()


def _pairs(run: Path) -> dict[str, Pair]:
    return {p.pair_id: p for p in RunDir(run).load_pairs()}


def _assert_inert(p: Page) -> None:
    assert p.page.evaluate("typeof window.pwned") == "undefined"
    assert p.page.title() == "equiv · blind labelling"
    assert p.page.locator("img, svg, iframe, textarea").count() == 0


def _assert_blind(p: Page) -> None:
    visible = p.page.inner_text("body")
    low = visible.lower()
    for word in ("baseline", "candidate", BASE_MODEL, CAND_MODEL, JUDGE, "reason-secret", "secret", "logged"):
        assert word.lower() not in low, word


def test_every_item_is_blind_and_hostile_text_stays_text(run_dir: Path, open_page: Any) -> None:
    html = (run_dir / "label.html").read_text(encoding="utf-8")
    for secret in (BASE_MODEL, CAND_MODEL, JUDGE, "reason-secret"):
        assert secret not in html  # not even in the page's data
    assert html.count("<script") == 2 and html.count("</script>") == 2

    p = open_page(run_dir / "label.html")
    data = p.data()
    assert len(data["items"]) == N and data["run_id"] == RUN_ID
    assert p.progress() == f"0 / {N} labelled"
    shown_hostile = 0
    for i, item in enumerate(data["items"]):
        assert p.position() == f"Item {i + 1} of {N}"
        assert p.page.inner_text("#item-type") == item["prompt_type"]
        # shown literally: textContent is exactly the answer, nothing parsed out of it
        assert p.page.text_content("#answer-1-text") == item["answers"][0]
        assert p.page.text_content("#answer-2-text") == item["answers"][1]
        roles = p.page.locator("#conversation .role").all_text_contents()
        texts = p.page.locator("#conversation .text").all_text_contents()
        assert roles == ["system", "user"] and texts == [v["text"] for v in item["view"]]
        shown_hostile += any(h in a for h in HOSTILE for a in item["answers"])
        _assert_inert(p)
        _assert_blind(p)
        p.page.keyboard.press("ArrowRight")
    assert shown_hostile > 0
    assert p.page.inner_text("#answer-1-text").startswith("Answer")
    p.assert_quiet()


def test_escaping_alone_holds_without_the_csp(run_dir: Path, open_page: Any, tmp_path: Path) -> None:
    html = (run_dir / "label.html").read_text(encoding="utf-8")
    stripped = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    assert stripped != html
    page = tmp_path / "nocsp.html"
    page.write_text(stripped, encoding="utf-8")
    p = open_page(page)
    for _ in range(N):
        _assert_inert(p)
        p.page.keyboard.press("ArrowRight")
    p.assert_quiet()


def test_the_csp_blocks_a_script_it_did_not_hash(run_dir: Path, open_page: Any, tmp_path: Path) -> None:
    # the control for assert_quiet: a changed script is refused, and the page reports it
    html = (run_dir / "label.html").read_text(encoding="utf-8")
    page = tmp_path / "tampered.html"
    page.write_text(html.replace('"use strict";', '"use strict";window.tampered=1;', 1), encoding="utf-8")
    p = open_page(page)
    assert p.page.evaluate("typeof window.tampered") == "undefined"
    assert p.csp_violations() and any("Content Security Policy" in line for line in p.console)
    assert p.page.locator("#item").is_hidden()


def test_keys_label_resume_after_reload_and_save_writes_labels_jsonl(
    run_dir: Path, open_page: Any, tmp_path: Path
) -> None:
    p = open_page(run_dir / "label.html")
    items = p.data()["items"]
    # the page's sides are equiv.label's own: same sample, same coin per pair_id
    expected_items = sample(list(_pairs(run_dir).values()), N, seed=5)
    assert [(i["pair_id"], i["left"]) for i in items] == [(e.pair.pair_id, e.left) for e in expected_items]
    assert all(i["left"] == left_side(i["pair_id"], 5) for i in items)
    assert {i["left"] for i in items} == {"baseline", "candidate"}
    assert p.page.is_disabled("#btn-save")

    keys = ["1", "2", "0", "2", "1"]
    for k, key in enumerate(keys[:3], start=1):
        p.page.keyboard.press(key)
        assert p.progress() == f"{k} / {N} labelled"
        assert p.page.evaluate("document.getElementById('progress').value") == k
        assert p.position() == f"Item {k + 1} of {N}"
    assert p.page.is_enabled("#btn-save")

    p.page.reload()  # localStorage keyed by the run id: the page resumes at the first unlabelled item
    assert p.progress() == f"3 / {N} labelled"
    assert p.position() == f"Item 4 of {N}"
    p.page.keyboard.press("Backspace")  # back to item 3, labelled tie: the page shows it
    assert p.position() == f"Item 3 of {N}"
    assert "tie" in p.page.inner_text("#item-state")
    assert "chosen" in (p.page.get_attribute("#btn-0", "class") or "")
    p.page.keyboard.press("ArrowLeft")
    p.page.keyboard.press("2")  # relabel item 2 ("2" again, the same), then on to the first unlabelled
    assert p.position() == f"Item 4 of {N}" and p.progress() == f"3 / {N} labelled"
    p.page.click("#btn-2")  # a button labels just as its key does
    p.page.keyboard.press("1")
    assert p.progress() == f"5 / {N} labelled"
    assert p.position() == f"Item 6 of {N}"
    for _ in range(4):
        p.page.keyboard.press("ArrowLeft")
    assert p.position() == f"Item 2 of {N}"
    assert "answer 2 is better" in p.page.inner_text("#item-state")
    p.page.keyboard.press("1")  # change item 2 from "2" to "1"
    keys[1] = "1"
    assert p.progress() == f"5 / {N} labelled" and p.position() == f"Item 6 of {N}"

    with p.page.expect_download() as info:
        p.page.keyboard.press("s")
    download = info.value
    assert download.suggested_filename == "labels.jsonl"
    saved = tmp_path / "labels.jsonl"
    download.save_as(saved)
    assert "saved 5 labels" in p.page.inner_text("#status")

    lines = saved.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    originals = _pairs(run_dir)
    for line, item, key in zip(lines, items[: len(keys)], keys, strict=True):
        row = json.loads(line)
        assert list(row) == [
            "pair_id",
            "prompt_type",
            "messages",
            "baseline",
            "candidate",
            "judgments",
            "error",
            "gold",
            "labelled_at",
            "labeller",
        ]
        assert row["pair_id"] == item["pair_id"]
        other = "candidate" if item["left"] == "baseline" else "baseline"
        assert row["gold"] == {"1": item["left"], "2": other, "0": "tie"}[key]
        orig = originals[row["pair_id"]]
        assert orig.baseline is not None and orig.candidate is not None
        assert row["baseline"] == {"model": "baseline", "output": orig.baseline.output}
        assert row["candidate"] == {"model": "candidate", "output": orig.candidate.output}
        assert row["messages"] == orig.messages and row["prompt_type"] == orig.prompt_type
        assert row["judgments"] == [] and row["error"] is None and row["labeller"] == "human"
        assert datetime.fromisoformat(row["labelled_at"].replace("Z", "+00:00")).tzinfo is not None
        Pair.model_validate_json(line)  # a pairs.jsonl line, as `equiv calibrate` reads it
    p.assert_quiet()


def test_labelling_every_item_shows_done_and_the_full_bar(run_dir: Path, open_page: Any) -> None:
    p = open_page(run_dir / "label.html")
    assert p.page.locator("#done").is_hidden()
    for k in range(N):
        p.page.keyboard.press("012"[k % 3])
    assert p.progress() == f"{N} / {N} labelled"
    assert p.page.evaluate("document.getElementById('progress').value") == N
    assert p.page.locator("#done").is_visible()
    assert p.position() == f"Item {N} of {N}"
    p.assert_quiet()


def test_answers_side_by_side_and_stacked_on_narrow_screens(run_dir: Path, open_page: Any) -> None:
    wide = open_page(run_dir / "label.html", 1280)
    a1, a2 = wide.page.locator("#answer-1").bounding_box(), wide.page.locator("#answer-2").bounding_box()
    assert a1["y"] == a2["y"] and a2["x"] >= a1["x"] + a1["width"]
    narrow = open_page(run_dir / "label.html", 420)
    a1, a2 = narrow.page.locator("#answer-1").bounding_box(), narrow.page.locator("#answer-2").bounding_box()
    assert a2["y"] >= a1["y"] + a1["height"] and abs(a1["x"] - a2["x"]) < 1
    assert narrow.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    wide.assert_quiet()
    narrow.assert_quiet()
