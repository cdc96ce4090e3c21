"""Format openai-batch (SPEC "Where traffic lives — contract"): a Batch job's input and output JSONL, joined.

The fixture follows OpenAI's published Batch API shapes (platform.openai.com/docs/guides/batch, API
reference "The request input object" / "The request output object"):
- openai_batch/input.jsonl: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``,
  the 36 calls of native.jsonl (custom_id ``<prompt_type>:<id>``, same messages and params, the tenant in
  the body's ``metadata`` with ``store``), plus an ``/v1/embeddings`` request, a request that expired, one
  the server failed and one not run yet;
- openai_batch/output.jsonl: ``{"id", "custom_id", "response": {"status_code", "request_id", "body": <a
  chat.completion with usage and created = the native timestamp>}, "error"}`` for all of them but the one
  not run: the expired one with ``error`` set (as the batch's error file writes it), the failed one with
  ``status_code`` 500.
"""

from __future__ import annotations

import gzip
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from equiv.errors import InputError
from equiv.schema import TrafficRecord
from equiv.traffic import ReadStats, file_digest, read_traffic
from equiv.traffic.detect import detect_format

DATA = Path(__file__).parent.parent / "data" / "traffic_formats"
NATIVE = DATA / "native.jsonl"
BATCH = DATA / "openai_batch"
INPUT = BATCH / "input.jsonl"
OUTPUT = BATCH / "output.jsonl"

SKIPPED = {
    "openai-batch: embeddings request": 1,
    "openai-batch: error": 1,
    "openai-batch: status 500": 1,
    "openai-batch: not yet run": 1,
}


def _read(path: Any, **kw: Any) -> list[TrafficRecord]:
    return list(read_traffic(path, **kw))


def _error(path: Any, **kw: Any) -> str:
    with pytest.raises(InputError) as e:
        _read(path, **kw)
    return e.value.message


def _key(r: TrafficRecord) -> tuple[Any, ...]:
    assert r.usage is not None
    return (
        r.prompt_type,
        r.messages,
        r.response,
        r.usage.prompt_tokens,
        r.usage.completion_tokens,
        r.timestamp,
        r.params,
        r.metadata.get("tenant"),
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _batch(tmp_path: Path, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> Path:
    folder = tmp_path / "batch"
    _write(folder / "input.jsonl", inputs)
    _write(folder / "output.jsonl", outputs)
    return folder


def test_fixture_reads_as_the_native_calls() -> None:
    stats = ReadStats()
    recs = _read(BATCH, stats=stats)
    native = _read(NATIVE)
    assert len(recs) == len(native) == 36
    assert [_key(r) for r in recs] == [_key(r) for r in native]  # the output file is in the input's order
    assert [r.id for r in recs] == [f"{r.prompt_type}:{r.id}" for r in native]  # custom_id is the id
    assert {r.model for r in recs} == {"gpt-4o"}
    assert all(r.timestamp is not None and r.timestamp.tzinfo is not None for r in recs)
    assert recs[0].params == {"temperature": 0, "max_tokens": 8}  # store / metadata are not replayed
    assert dict(stats.skipped) == SKIPPED
    assert all(stats.categories[reason] == "not traffic" for reason in SKIPPED)
    assert stats.invalid == 0 and stats.read == 36


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(BATCH, id="folder"),
        pytest.param([INPUT, OUTPUT], id="two-paths"),
        pytest.param([str(OUTPUT), str(INPUT)], id="two-paths-reversed"),
        pytest.param(str(BATCH / "*.jsonl"), id="glob"),
        pytest.param(str(BATCH / "*put.jsonl"), id="another-glob"),
    ],
)
def test_a_folder_two_paths_or_a_glob_read_the_same_and_key_the_same_run(spec: Any) -> None:
    stats = ReadStats()
    assert [_key(r) for r in _read(spec, stats=stats)] == [_key(r) for r in _read(BATCH)]
    assert dict(stats.skipped) == SKIPPED
    assert file_digest(spec) == file_digest(BATCH)


def test_records_name_both_lines() -> None:
    first = _read(BATCH)[0]
    assert first.source == f"{INPUT}:1 ({OUTPUT}:1)"


def test_output_order_is_kept_and_compressed_files_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    shutil.copy(INPUT, folder / "input.jsonl")
    out = list(reversed(OUTPUT.read_text().splitlines(keepends=True)))  # OpenAI does not keep the input order
    (folder / "output.jsonl.gz").write_bytes(gzip.compress("".join(out).encode()))
    stats = ReadStats()
    recs = _read(folder, stats=stats)
    assert [_key(r) for r in recs] == [_key(r) for r in reversed(_read(NATIVE))]
    assert dict(stats.skipped) == SKIPPED


def test_prompt_type_is_the_custom_id_prefix_else_default_or_prompt_type_field(tmp_path: Path) -> None:
    inputs = _lines(INPUT)[:3]
    outputs = _lines(OUTPUT)[:3]
    inputs[0]["custom_id"] = outputs[0]["custom_id"] = "no-colon-here"
    inputs[1]["custom_id"] = outputs[1]["custom_id"] = ":empty-prefix"
    inputs[2]["custom_id"] = outputs[2]["custom_id"] = "a:b:c"
    folder = _batch(tmp_path, inputs, outputs)
    assert [r.prompt_type for r in _read(folder)] == ["default", "default", "a"]
    assert [r.prompt_type for r in _read(BATCH, prompt_type_field="body.metadata.tenant")][:2] == ["globex", "acme"]
    assert {r.prompt_type for r in _read(BATCH, prompt_type_field="tenant")} == {"globex", "acme"}  # body.metadata
    models = {r.prompt_type for r in _read(BATCH, prompt_type_field="response.body.model")}
    assert models == {"gpt-4o"}


def test_where_filters_on_the_record_and_on_the_lines_as_written() -> None:
    assert len(_read(BATCH, where=["metadata.tenant=acme"])) == 18
    assert len(_read(BATCH, where=["body.metadata.tenant=acme"])) == 18
    assert len(_read(BATCH, where=["prompt_type=summary"])) == 12


def test_forced_format_and_detection() -> None:
    assert len(_read(BATCH, format="openai-batch")) == 36
    for line in [*_lines(INPUT), *_lines(OUTPUT)]:
        assert detect_format(line).name == "openai-batch"
    for line in _lines(NATIVE):
        assert detect_format(line).name != "openai-batch"


def test_one_side_alone_is_refused_saying_what_to_give() -> None:
    assert "OpenAI Batch input but no output file" in _error(INPUT)
    assert "OpenAI Batch output but no input file" in _error(OUTPUT)
    assert "give the batch's input and output files together" in _error(OUTPUT)


def test_a_batch_file_with_another_traffic_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(INPUT, folder / "a_input.jsonl")
    shutil.copy(OUTPUT, folder / "b_output.jsonl")
    shutil.copy(NATIVE, folder / "c_native.jsonl")
    msg = _error(folder)
    assert msg.startswith(f"{folder / 'c_native.jsonl'}: is not an OpenAI Batch file"), msg


def test_an_output_line_without_its_input_line_is_invalid_naming_its_line(tmp_path: Path) -> None:
    outputs = _lines(OUTPUT)
    outputs.insert(2, {**outputs[0], "custom_id": "summary:from-another-batch"})
    folder = _batch(tmp_path, _lines(INPUT), outputs)
    msg = _error(folder)
    assert msg.startswith(
        f"{folder / 'output.jsonl'}:3: no Batch input line has custom_id 'summary:from-another-batch'"
    )
    assert "--skip-invalid" in msg
    stats = ReadStats()
    assert len(_read(folder, skip_invalid=True, stats=stats)) == 36
    assert stats.skipped["openai-batch: no input line"] == 1 and stats.invalid == 1


def test_a_failed_output_line_without_input_is_still_only_skipped(tmp_path: Path) -> None:
    outputs = _lines(OUTPUT)
    outputs.append({"id": "batch_req_x", "custom_id": "x:1", "response": None, "error": {"code": "e", "message": "m"}})
    stats = ReadStats()
    assert len(_read(_batch(tmp_path, _lines(INPUT), outputs), stats=stats)) == 36
    assert stats.skipped["openai-batch: error"] == 2


def test_repeated_custom_ids_are_invalid_naming_both_lines(tmp_path: Path) -> None:
    inputs = _lines(INPUT)
    inputs.insert(1, inputs[0])
    folder = _batch(tmp_path, inputs, _lines(OUTPUT))
    msg = _error(folder)
    assert msg.startswith(f"{folder / 'input.jsonl'}:2: custom_id 'ticket-triage:ticket-triage-000' repeats the line ")
    assert f"{folder / 'input.jsonl'}:1" in msg
    outputs = _lines(OUTPUT)
    outputs.insert(1, outputs[0])
    folder = _batch(tmp_path, _lines(INPUT), outputs)
    assert _error(folder).startswith(f"{folder / 'output.jsonl'}:2: custom_id 'ticket-triage:ticket-triage-000'")


def test_a_malformed_line_names_its_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    lines = INPUT.read_text().splitlines(keepends=True)
    lines[4] = lines[4][:40] + "\n"
    (folder / "input.jsonl").write_text("".join(lines))
    shutil.copy(OUTPUT, folder / "output.jsonl")
    msg = _error(folder)
    assert msg.startswith(f"{folder / 'input.jsonl'}:5: invalid JSON"), msg
    stats = ReadStats()
    recs = _read(folder, skip_invalid=True, stats=stats)
    assert len(recs) == 35 and stats.skipped["invalid JSON"] == 1
    assert stats.skipped["openai-batch: no input line"] == 1  # its output line has no input left
    assert stats.invalid == 2


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"messages": [{"role": "robot", "content": "x"}]}, "body.messages[0].role 'robot' is not a chat role"),
        ({"api_base": "https://evil.example"}, "api_base"),
        ({"mock_response": "GO"}, "mock_response"),
        ({"n": 2}, "body.n is 2"),
        ({"temperature": "hot"}, "temperature"),
    ],
)
def test_a_bad_request_body_names_both_lines_and_the_field(tmp_path: Path, change: dict[str, Any], text: str) -> None:
    inputs = _lines(INPUT)
    inputs[3]["body"].update(change)
    folder = _batch(tmp_path, inputs, _lines(OUTPUT))
    msg = _error(folder)
    assert msg.startswith(f"{folder / 'input.jsonl'}:4 ({folder / 'output.jsonl'}:4): "), msg
    assert text in msg, msg


def test_a_response_without_a_body_is_invalid(tmp_path: Path) -> None:
    outputs = _lines(OUTPUT)
    outputs[0]["response"] = None
    msg = _error(_batch(tmp_path, _lines(INPUT), outputs))
    assert "response must be an object, got null (and error is null)" in msg


def test_compare_reads_a_batch_as_it_reads_the_native_file(tmp_path: Path) -> None:
    """The whole run: the same prompt-types, counts, estimates and baseline cost as native.jsonl."""
    from typer.testing import CliRunner

    from equiv.cli import _register, app

    _register()
    cfg = tmp_path / "equiv.toml"
    cfg.write_text(
        textwrap.dedent(
            """
            baseline = "fake/skill-99"
            candidate = "fake/skill-90"
            judge = "fake/judge"
            per_type = 12
            bootstrap = 500
            """
        )
    )
    verdicts = {}
    for name, traffic in (("native", NATIVE), ("batch", BATCH)):
        out = tmp_path / name
        res = CliRunner().invoke(app, ["compare", str(traffic), "-c", str(cfg), "--out", str(out), "-q"])
        assert res.exit_code in (0, 1), res.output
        run_dir = next(out.iterdir())
        verdicts[name] = json.loads((run_dir / "verdict.json").read_text())
        if name == "batch":
            info = json.loads((run_dir / "run.json").read_text())
            assert info["sample"]["traffic_skipped"] == SKIPPED

    def summary(v: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [
            (
                t["prompt_type"],
                t["n"],
                t["verdict"],
                t["quality_diff"],
                t["cost"]["baseline_usd_per_request"],
                t["cost"]["monthly_requests"],
            )
            for t in v["prompt_types"]
        ]

    assert summary(verdicts["batch"]) == summary(verdicts["native"])
