"""Bad input through the real CLI: exit 2, one message naming the file, line or key, never a traceback.

The traffic corpus is tests/data/bad (its expected messages live in tests/test_traffic.py::BAD_CASES; here
we check the same text reaches the user through `equiv compare`). Config, price, key and usage mistakes
are added here. A few go through a real subprocess too, so the entry point itself is covered.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from equiv.cli import _register, app
from tests.test_traffic import BAD, BAD_CASES

MODELS = ("--baseline", "fake/skill-90", "--candidate", "fake/skill-60", "--judge", "fake/judge")
GOOD = '{"prompt": "Where is my refund?", "prompt_type": "billing", "response": "It is on its way."}\n'


def cli(*args: str) -> tuple[int, str]:
    _register()
    r = CliRunner().invoke(app, list(args), catch_exceptions=False)  # an unexpected exception fails the test
    return r.exit_code, r.stderr + r.stdout


def assert_clean_error(code: int, out: str, *must: str) -> None:
    assert code == 2, out
    assert "Traceback" not in out and 'File "' not in out, out
    assert out.count("equiv: error:") == 1 or "Usage:" in out, out
    for m in must:
        assert m in out, f"{m!r} not in {out!r}"


@pytest.mark.parametrize(("name", "line", "text"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_every_bad_traffic_file_exits_2_naming_file_and_line(
    name: str, line: int | None, text: str, tmp_path: Path
) -> None:
    path = BAD / name
    code, out = cli("compare", str(path), *MODELS, "--out", str(tmp_path))
    where = f"{path}:{line}: " if line is not None else str(path)
    assert_clean_error(code, out, where, text)
    assert not any(tmp_path.iterdir())  # refused before a run directory was made


def test_a_50_mb_single_line_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "big.jsonl"
    with f.open("wb") as fh:
        fh.write(GOOD.encode() + b'{"prompt": "')
        block = b"z" * 2**20
        for _ in range(50):
            fh.write(block)
        fh.write(b'"}\n')
    code, out = cli("compare", str(f), *MODELS, "--out", str(tmp_path / "out"))
    assert_clean_error(code, out, f"{f}:2: line is 50.0 MiB, over the 32 MiB limit")


def write_config(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "equiv.toml"
    p.write_text(text)
    return p


def traffic(tmp_path: Path) -> Path:
    p = tmp_path / "t.jsonl"
    p.write_text(GOOD * 3)
    return p


@pytest.mark.parametrize(
    ("config", "must"),
    [
        ('per_type = "many"\n', ["equiv.toml: key 'per_type'", "valid integer"]),
        ("concurrency = 0\n", ["key 'concurrency'", "greater than or equal to 1"]),
        ("marginn = 0.1\n", ["unknown key 'marginn'"]),
        (
            '[models."fake/skill-60"]\ninput_cost_per_mtk = 1\n',
            ["unknown key 'models.fake/skill-60.input_cost_per_mtk'"],
        ),
        ('[models."fake/skill-60"]\ninput_cost_per_mtok = "cheap"\n', ["models.fake/skill-60.input_cost_per_mtok"]),
        ("margin = 0.1\nmargin = 0.2\n", ["equiv.toml: invalid TOML"]),
        ('baseline_source = "replayed"\n', ["key 'baseline_source'", "'logged' or 'rerun'"]),
        # wrongly typed values are not coerced (issue 12 point 4): each names the key, what was given and the fix
        ('per_type = "200"\n', ["equiv.toml: key 'per_type'", "got '200'", "per_type = 200"]),
        ('judge_check = "yes"\n', ["key 'judge_check'", "got 'yes'", "judge_check = true or judge_check = false"]),
        ("concurrency = true\n", ["key 'concurrency'", "got true", "a number, not true/false"]),
        ('margin = "0.1"\n', ["key 'margin'", "got '0.1'", "margin = 0.1"]),
        ("margin = 1.5\n", ["key 'margin'", "less than 1"]),
        (
            '[[routes]]\nname = "r"\ntraffic = "t.jsonl"\nbaseline = "a"\ncandidate = "b"\nmargin = 1\n',
            ["key 'routes.0.margin'", "less than 1"],
        ),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, config: str, must: list[str]) -> None:
    cfg = write_config(tmp_path, config)
    code, out = cli("compare", str(traffic(tmp_path)), "--config", str(cfg), *MODELS, "--out", str(tmp_path / "o"))
    assert_clean_error(code, out, *must)


def test_config_not_utf8_and_missing(tmp_path: Path) -> None:
    cfg = tmp_path / "equiv.toml"
    cfg.write_bytes(b"margin = 0.1 # caf\xe9\n")
    code, out = cli("compare", str(traffic(tmp_path)), "--config", str(cfg), *MODELS)
    assert_clean_error(code, out, str(cfg), "not UTF-8")
    code, out = cli("compare", str(traffic(tmp_path)), "--config", str(tmp_path / "nope.toml"), *MODELS)
    assert_clean_error(code, out, "nope.toml: config file not found")


def test_unknown_model_price_is_refused_before_any_call(tmp_path: Path) -> None:
    code, out = cli(
        "compare",
        str(traffic(tmp_path)),
        "--baseline",
        "fake/skill-90",
        "--candidate",
        "openai/not-a-real-model-xyz",
        "--judge",
        "fake/judge",
        "--out",
        str(tmp_path / "o"),
    )
    assert_clean_error(code, out, "no price known for model 'openai/not-a-real-model-xyz'", "input_cost_per_mtok")
    assert not (tmp_path / "o").exists()


def test_missing_api_key_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQUIV_NO_SUCH_KEY", raising=False)
    cfg = write_config(tmp_path, '[models."fake/skill-60"]\napi_key_env = "EQUIV_NO_SUCH_KEY"\n')
    code, out = cli("compare", str(traffic(tmp_path)), "--config", str(cfg), *MODELS)
    assert_clean_error(code, out, "EQUIV_NO_SUCH_KEY", "not set")


@pytest.mark.parametrize(
    "args",
    [
        ("--per-type", "lots"),
        ("--types", "nosuchtype"),
        ("--resume", "/nonexistent/run"),
        ("--baseline", "fake/skill-60"),  # the same model as the candidate
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    code, out = cli("compare", str(traffic(tmp_path)), *MODELS, "--out", str(tmp_path / "o"), *args)
    assert_clean_error(code, out)


def test_report_on_a_corrupt_pairs_file_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "pairs.jsonl"
    p.write_text('{"pair_id": "a", "prompt_type": "t"}\n{"pair_id": 3\n{"pair_id": "c"}\n')
    code, out = cli("report", str(p))
    assert_clean_error(code, out, f"{p}:2")
    code, out = cli("report", str(tmp_path / "missing"))
    assert_clean_error(code, out, "not found")


@pytest.mark.parametrize("name", ["binary_garbage.jsonl", "invalid_utf8.jsonl", "unknown_role.jsonl"])
def test_real_entry_point_exits_2_without_traceback(name: str, tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "equiv", "compare", str(BAD / name), *MODELS, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith(f"equiv: error: {BAD / name}:2: ") and "Traceback" not in p.stderr
    assert p.stdout == ""


def test_error_messages_never_carry_terminal_escapes_from_the_input(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "hi", "prompt_type": "evil\\u001b[2J\\u001b]0;pwned\\u0007\\u202e"}\n')
    code, out = cli("compare", str(f), *MODELS, "--types", "billing", "--out", str(tmp_path / "o"))
    assert_clean_error(code, out, "--types names prompt-types not in")
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out


HOSTILE = '{"prompt": "Refund?", "prompt_type": "billing", "response": "Soon.", "params": {"api_base": "http://127.0.0.1:9/v1"}}\n'


@pytest.mark.parametrize(
    "params",
    [
        '{"api_base": "http://127.0.0.1:9/v1"}',
        '{"mock_response": "The candidate is always right."}',
        '{"extra_headers": {"X-Evil": "1"}}',
        '{"n": 5}',
        '{"stream": true}',
        '{"max_tokens": true}',
    ],
)
def test_traffic_params_cannot_steer_a_call(tmp_path: Path, params: str) -> None:
    """Issue 12 point 1: a record's params carry sampling params only; anything else is exit 2, key and line named."""
    f = tmp_path / "t.jsonl"
    key = params.split('"')[1]
    f.write_text(GOOD + f'{{"prompt": "Refund?", "prompt_type": "billing", "response": "Soon.", "params": {params}}}\n')
    code, out = cli("compare", str(f), *MODELS, "--out", str(tmp_path / "o"))
    assert_clean_error(code, out, f"{f}:2: params.{key}", "--skip-invalid")
    assert not (tmp_path / "o").exists()  # refused before a run directory was made


def test_skip_invalid_skips_and_counts_hostile_params(tmp_path: Path) -> None:
    import json

    f = tmp_path / "t.jsonl"
    f.write_text(GOOD * 3 + HOSTILE)
    code, out = cli("compare", str(f), *MODELS, "--out", str(tmp_path / "o"), "--skip-invalid", "--quiet")
    assert code == 0, out
    (run,) = (tmp_path / "o").iterdir()
    info = json.loads((run / "run.json").read_text())
    assert info["sample"]["invalid_skipped"] == 1
    assert "1 invalid traffic record(s) skipped (--skip-invalid)" in (run / "verdict.json").read_text()
    assert "127.0.0.1:9" not in (run / "pairs.jsonl").read_text()


def test_a_hostile_api_base_in_traffic_never_receives_a_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The candidate is served where the environment says (OPENAI_API_BASE, OPENAI_API_KEY, as for a hosted model);
    a record naming another host must not move the call there, key and all. Before the fix it did."""
    import json

    from equiv.testing import LoopbackServer

    with LoopbackServer() as good, LoopbackServer() as evil:
        monkeypatch.setenv("OPENAI_API_BASE", good.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-equiv-test-secret")
        cfg = write_config(
            tmp_path,
            '[models."openai/skill-60"]\ninput_cost_per_mtok = 0.1\noutput_cost_per_mtok = 0.1\n'
            '[models."fake/skill-90"]\ninput_cost_per_mtok = 1\noutput_cost_per_mtok = 1\n',
        )
        f = tmp_path / "t.jsonl"
        hostile = json.loads(HOSTILE)
        hostile["params"]["api_base"] = evil.base_url
        f.write_text(GOOD * 2 + json.dumps(hostile) + "\n")
        args = (
            "compare",
            str(f),
            "--config",
            str(cfg),
            "--baseline",
            "fake/skill-90",
            "--candidate",
            "openai/skill-60",
            "--judge",
            "fake/judge",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        )
        code, out = cli(*args)
        assert_clean_error(code, out, f"{f}:3: params.api_base")
        assert good.requests == [] and evil.requests == []
        code, out = cli(*args, "--skip-invalid")
        assert code == 0, out
        assert evil.requests == [], "the hostile host was called"
        assert good.requests, "the candidate was never called: the test proves nothing"
