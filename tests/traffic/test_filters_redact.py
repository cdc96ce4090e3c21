"""--where filters, --format, and redaction of prompts and answers (issue 14, SPEC "Where traffic lives")."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from equiv.errors import InputError
from equiv.llm import client
from equiv.llm.cache import CallCache
from equiv.llm.client import ModelSpec
from equiv.llm.runner import Runner
from equiv.schema import Completion
from equiv.traffic import ReadStats, read_traffic
from equiv.traffic.redact import MASK, load_redactor

NATIVE = Path(__file__).parent.parent / "data" / "traffic_formats" / "native.jsonl"


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NATIVE.read_text().splitlines()]


def test_where_keeps_matching_records_and_counts_the_rest() -> None:
    stats = ReadStats()
    recs = list(read_traffic(NATIVE, where=["metadata.tenant=acme"], stats=stats))
    expected = [r["id"] for r in _rows() if r["metadata"]["tenant"] == "acme"]
    assert [r.id for r in recs] == expected
    assert stats.skipped == {"where metadata.tenant=acme": 36 - len(expected)}
    assert stats.invalid == 0 and stats.count("filtered") == 36 - len(expected)


def test_where_filters_combine_and_read_the_record_as_equiv_read_it(tmp_path: Path) -> None:
    # prompt_type is a top-level key of a native row; an OpenAI log has it only after reading
    recs = list(read_traffic(NATIVE, where=["prompt_type=summary", "metadata.tenant=globex"]))
    assert recs and all(r.prompt_type == "summary" and r.metadata["tenant"] == "globex" for r in recs)
    log = tmp_path / "log.jsonl"
    log.write_text(
        json.dumps(
            {
                "request": {
                    "model": "gpt-4o",
                    "messages": [{"role": "user", "content": "hi"}],
                    "metadata": {"tags": ["a", "b"]},
                },
                "response": {"choices": [{"message": {"role": "assistant", "content": "hello"}}]},
            }
        )
        + "\n"
    )
    assert len(list(read_traffic(log, where=["request.metadata.tags=b"]))) == 1  # a list matches one of its items
    assert list(read_traffic(log, where=["request.metadata.tags=c"])) == []


@pytest.mark.parametrize("bad", ["tenant", "=x", "a..b=1"])
def test_where_that_is_not_key_value_is_refused(bad: str) -> None:
    with pytest.raises(InputError, match="is not KEY=VALUE"):
        read_traffic(NATIVE, where=[bad])


def test_format_forces_a_reader_and_an_unknown_one_is_refused() -> None:
    with pytest.raises(InputError, match="not a traffic format"):
        read_traffic(NATIVE, format="nope")
    # a native file read as OpenAI logs: every record is wrong for that format, and the error names the line
    with pytest.raises(InputError, match=r"native\.jsonl:1:"):
        list(read_traffic(NATIVE, format="openai-log"))
    assert len(list(read_traffic(NATIVE, format="native"))) == 36


def test_redaction_patterns_rewrite_prompts_and_logged_answers(tmp_path: Path) -> None:
    rows = _rows()[:4]
    rows[0]["messages"][-1]["content"] += " Mail jane.doe@example.com, card 4111-1111-1111-1111."
    rows[1]["response"] = "Call me at jane.doe@example.com"
    rows[2]["messages"][-1]["content"] = [{"type": "text", "text": "write to bob@example.org"}]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    red = load_redactor([r"[\w.]+@[\w.]+\w", r"\d{4}(?:-\d{4}){3}"])
    assert red is not None
    recs = list(read_traffic(path, redact=red))
    text = json.dumps([r.model_dump(mode="json") for r in recs])
    assert "example.com" not in text and "4111" not in text and "bob@" not in text
    assert recs[0].messages[-1]["content"].endswith(f"Mail {MASK}, card {MASK}.")
    assert recs[1].response == f"Call me at {MASK}"
    assert recs[3].messages == rows[3]["messages"]  # untouched records stay as they were
    assert red.summary()["records_changed"] == 3


def test_redaction_rule_errors_name_the_key() -> None:
    with pytest.raises(InputError, match=r"redact\[1\].*not a regular expression"):
        load_redactor(["ok", "(unclosed"])
    with pytest.raises(InputError, match=r"redact\[0\].*empty string"):
        load_redactor(["x*"])
    with pytest.raises(InputError, match="cannot import"):
        load_redactor("no_such_module_xyz:scrub")
    with pytest.raises(InputError, match="no function"):
        load_redactor("json:no_such_function")


def test_redaction_by_a_users_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myscrub.py").write_text("def scrub(text):\n    return text.replace('Globex', '[ORG]')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    red = load_redactor("myscrub:scrub")
    assert red is not None
    recs = list(read_traffic(NATIVE, redact=red))
    assert not any("Globex" in json.dumps(r.messages) for r in recs)
    assert any("[ORG]" in json.dumps(r.messages) for r in recs)
    sys.modules.pop("myscrub", None)


def test_runner_redacts_answers_before_they_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model answer that writes what the rule masks is redacted before calls.jsonl, the judge or pairs see it;
    a judge's reply (redact=False) is left as written, so a verdict cannot be altered by the rule."""

    async def fake_acomplete(spec: ModelSpec, messages: Any, params: Any, api_key: Any) -> Completion:
        return Completion(
            model=spec.name,
            output="reach jane.doe@example.com",
            prompt_tokens=3,
            completion_tokens=3,
            cost_usd=0.0,
            tool_calls=[
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "mail", "arguments": '{"to": "jane.doe@example.com"}'},
                }
            ],
        )

    monkeypatch.setattr(client, "acomplete", fake_acomplete)
    red = load_redactor([r"[\w.]+@[\w.]+\w"])
    assert red is not None
    calls = tmp_path / "calls.jsonl"
    cache = CallCache(calls)
    runner = Runner(cache=cache, concurrency=2, max_retries=0, max_spend_usd=1.0, api_keys={}, redact=red.text)
    spec = ModelSpec("m", "openai/m", None, None, 0.0, 0.0, 10.0)

    async def go() -> tuple[Completion, Completion]:
        answer = await runner.call(spec, [{"role": "user", "content": "a"}], {}, redact=True)
        judged = await runner.call(spec, [{"role": "user", "content": "b"}], {})
        return answer, judged

    answer, judged = asyncio.run(go())
    cache.close()
    assert answer.output == f"reach {MASK}" and "jane" not in json.dumps(answer.tool_calls)
    assert judged.output == "reach jane.doe@example.com"
    lines = [json.loads(x) for x in calls.read_text().splitlines()]
    answer_line = next(x for x in lines if x["completion"]["output"].endswith(MASK))
    assert "jane" not in json.dumps(answer_line)


def test_compare_with_where_and_redact_end_to_end(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from equiv.cli import _register, app

    _register()

    rows = _rows()
    for r in rows:
        r["messages"][-1]["content"] += " Contact jane.doe@example.com."
    traffic = tmp_path / "t.jsonl"
    traffic.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tmp_path / "equiv.toml"
    cfg.write_text(
        textwrap.dedent(
            r"""
            baseline = "fake/skill-99"
            candidate = "fake/skill-90"
            judge = "fake/judge"
            per_type = 12
            redact = ['[\w.]+@[\w.]+\w']
            """
        )
    )
    res = CliRunner().invoke(
        app,
        [
            "compare",
            str(traffic),
            "-c",
            str(cfg),
            "--where",
            "metadata.tenant=acme",
            "--out",
            str(tmp_path / "out"),
            "-q",
        ],
    )
    assert res.exit_code in (0, 1), res.output
    run_dir = next((tmp_path / "out").iterdir())
    for f in run_dir.iterdir():
        if f.is_file():
            assert "jane.doe" not in f.read_text(errors="replace"), f.name
    info = json.loads((run_dir / "run.json").read_text())
    assert info["sample"]["traffic_skipped"] == {"where metadata.tenant=acme": 18}
    assert info["sample"]["redaction"]["records_changed"] == 18
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert any("redaction ran" in n for n in verdict["notes"])
    assert "settings" in info and "redact" not in info["settings"]  # patterns often hold the text they hide
    assert sum(t["n"] for t in verdict["prompt_types"]) == 18


def test_each_file_of_a_folder_is_detected_on_its_own(tmp_path: Path) -> None:
    data = NATIVE.parent
    for name in ("helicone.jsonl", "litellm_payload.jsonl"):
        (tmp_path / name).write_bytes((data / name).read_bytes())
    recs = list(read_traffic(tmp_path))
    assert len(recs) == 72  # the 36 calls of each tool's export, none taken for the other format


def test_patterns_apply_one_after_another_with_their_own_groups() -> None:
    red = load_redactor([r"(['\"]).*?\1", r"(\w)\1{3,}", r"(?i)secret"])
    assert red is not None
    assert red.text("token aaaaaa 'quoted' SECRET") == f"token {MASK} {MASK} {MASK}"


def test_redaction_keeps_ids_names_and_part_types() -> None:
    from equiv.schema import TrafficRecord

    red = load_redactor([r"\d{10,}", r"\btext\b"])
    assert red is not None
    rec = TrafficRecord(
        id="r",
        source="t:1",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "call 0123456789 about the text"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_98765432101",
                        "type": "function",
                        "function": {"name": "dial", "arguments": '{"n": "0123456789"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_98765432101", "content": "dialled 0123456789"},
        ],
    )
    out = red.record(rec).messages
    assert out[0]["content"] == [{"type": "text", "text": f"call {MASK} about the {MASK}"}]
    call = out[1]["tool_calls"][0]
    assert call["id"] == "call_98765432101" and call["function"]["name"] == "dial"
    assert call["function"]["arguments"] == f'{{"n": "{MASK}"}}'
    assert out[2]["tool_call_id"] == "call_98765432101" and out[2]["content"] == f"dialled {MASK}"


def test_a_failing_redaction_function_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "badscrub.py").write_text("def scrub(text):\n    raise ValueError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    red = load_redactor("badscrub:scrub")
    assert red is not None
    with pytest.raises(InputError, match="raised ValueError: boom"):
        list(read_traffic(NATIVE, redact=red))
    sys.modules.pop("badscrub", None)
