"""Secrets: the API key comes from the environment only and is never written or printed.

The loopback server is made careless on purpose: its 401, 429 and 500 error bodies quote the request
headers back, Authorization included, the way some providers and proxies do. The key must still appear
in no file the run writes, nowhere in stdout/stderr (litellm's debug log requested via LITELLM_LOG
included), and in no exception message.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from equiv.testing.loopback import LoopbackServer

from .conftest import make_records, run_subprocess, write_config, write_jsonl

KEY_ENV = "EQUIV_SECRET_TEST_KEY"


def leaks(key: str, text: str) -> list[str]:
    """Any trace of the key: whole, its distinctive middle, or any 10 consecutive characters of it."""
    found = []
    if key in text:
        found.append("the whole key")
    for i in range(0, len(key) - 10 + 1):
        if key[i : i + 10] in text:
            found.append(f"fragment {key[i : i + 10]!r}")
            break
    if re.search(r"Bearer\s+(?!\*)\S{6,}", text):
        found.append("a bearer token")
    return found


def written_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def run_case(tmp_path: Path, srv: LoopbackServer, key: str, **cfg: object):
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 30))
    config = write_config(
        tmp_path / "equiv.toml", srv, baseline="skill-95", candidate="skill-60", per_type=30, key_env=KEY_ENV, **cfg
    )
    r = run_subprocess(
        "compare",
        str(traffic),
        "--config",
        str(config),
        "--out",
        str(tmp_path / "reports"),
        env={KEY_ENV: key, "LITELLM_LOG": "DEBUG"},
        timeout=300,
    )
    return r


def assert_no_leak(tmp_path: Path, key: str, *outputs: str) -> None:
    files = written_files(tmp_path / "reports")
    assert any(f.name == "pairs.jsonl" for f in files) or any(f.name == "verdict.json" for f in files)
    for f in files:
        assert not leaks(key, f.read_text(encoding="utf-8", errors="replace")), f
    for out in outputs:
        assert not leaks(key, out), out[-2000:]


def test_key_never_written_when_the_provider_echoes_it_in_500_and_429_errors(tmp_path: Path) -> None:
    key = "sk-proj-" + secrets.token_hex(16)
    # max_retries 0: some calls fail for good, so the provider's error text reaches pairs.jsonl and the reports
    with LoopbackServer(seed=8, api_key=key, rate_500=0.15, rate_429=0.1, echo_headers=True) as srv:
        r = run_case(tmp_path, srv, key, max_retries=0, judge_retries=0)
        sent = [q["headers"].get("authorization") for q in srv.requests]
    assert r.exit_code == 0, r.stderr[-2000:]
    assert sent and all(h == f"Bearer {key}" for h in sent)  # the key was really used
    pairs = (next((tmp_path / "reports").iterdir()) / "pairs.jsonl").read_text()
    assert "Request headers" in pairs and "***" in pairs  # the echoed error body did reach the file, redacted
    assert_no_leak(tmp_path, key, r.stdout, r.stderr)
    assert "Request Sent from LiteLLM" not in r.stderr  # litellm's debug log stays off even if LITELLM_LOG asks


def test_key_never_written_on_an_authentication_failure_that_echoes_it(tmp_path: Path) -> None:
    key = "sk-live-" + secrets.token_hex(16)
    with LoopbackServer(seed=8, api_key="sk-the-right-one", echo_headers=True) as srv:
        r = run_case(tmp_path, srv, key)
        n = len(srv.requests)
    assert r.exit_code == 4 and "authentication failed" in r.stderr, r.stderr[-2000:]
    assert "Incorrect API key provided" in r.stderr and KEY_ENV in r.stderr  # says which variable to check
    assert n <= 8
    assert_no_leak(tmp_path, key, r.stdout, r.stderr)


def test_a_missing_key_variable_is_named_and_nothing_is_called(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with LoopbackServer(seed=8) as srv:
        traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 5))
        config = write_config(tmp_path / "equiv.toml", srv, baseline="skill-95", candidate="skill-60", key_env=KEY_ENV)
        r = run_subprocess("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"))
        assert not srv.requests
    assert r.exit_code == 2 and KEY_ENV in r.stderr and "Traceback" not in r.stderr


def test_provider_error_text_is_redacted_in_exception_messages() -> None:
    import litellm

    from equiv.llm.client import _classify

    key = "sk-abc-" + secrets.token_hex(12)
    body = f'{{"error": {{"message": "bad", "headers": {{"authorization": "Bearer {key}", "x-api-key": "{key}"}}}}}}'
    for exc in (
        litellm.InternalServerError(body, llm_provider="openai", model="m"),
        litellm.AuthenticationError(
            f"Incorrect API key provided: {key[:8]}****{key[-4:]}. {body}", llm_provider="openai", model="m"
        ),
    ):
        err = _classify(exc, key)
        assert not leaks(key, err.message) and not leaks(key, str(err)), err.message
    # a key-like string from elsewhere (not ours) is removed too
    other = _classify(
        litellm.InternalServerError("echo: api_key=ABCDEF123456 Bearer zzzzzzzzzzzz", llm_provider="openai", model="m"),
        None,
    )
    assert "ABCDEF123456" not in other.message and "zzzzzzzzzzzz" not in other.message


def test_litellm_debug_output_is_off() -> None:
    import logging

    from equiv.llm import client

    litellm = client._litellm()
    assert litellm.suppress_debug_info is True and litellm.set_verbose is False
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)


# -- keys litellm reads from the environment by itself ------------------------------------------------------

ENV_KEY_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE")


def env_key_config(path: Path, **top: object) -> Path:
    """Models with no api_base and no api_key_env: litellm reads OPENAI_API_KEY (and the base URL) itself."""
    lines = [
        'baseline = "openai/skill-95"',
        'candidate = "openai/skill-60"',
        'judge = "openai/judge"',
        "concurrency = 8",
        "bootstrap = 500",
        "max_spend_usd = 5.0",
        "timeout_s = 5.0",
        "per_type = 30",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in top.items()]
    for name in ("skill-95", "skill-60", "judge"):
        lines += [f'[models."openai/{name}"]', "input_cost_per_mtok = 1.0", "output_cost_per_mtok = 2.0"]
    path.write_text("\n".join(lines) + "\n")
    return path


def every_form(key: str) -> list[str]:
    return list(dict.fromkeys([key, quote(key, safe=""), quote_plus(key)]))


def assert_written_nowhere(key: str, root: Path, *outputs: str) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(f.name == "run.json" for f in files), files
    for form in every_form(key):
        for f in files:
            text = f.read_text(encoding="utf-8", errors="replace")
            assert not leaks(form, text), (f, leaks(form, text))
        for out in outputs:
            assert not leaks(form, out), out[-2000:]


GEMINI_LIKE = "AIzaSy" + "Dq3vX9kLmN0pQrStUvWxYz12345678_-a"  # the shape no pattern knew
WITH_URL_CHARS = "AIzaSy" + "Qk+7/Zp=Rt" + "Lm9xVb3NcWq2Hd8Fg"  # '+', '/' and '=' differ once URL-encoded


@pytest.mark.parametrize("key", [GEMINI_LIKE, WITH_URL_CHARS], ids=["aiza", "url-encoded"])
def test_an_environment_key_quoted_back_in_error_urls_is_written_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """The key is only in the environment (not configured); the provider quotes it back in the URL of its
    error, as is (?key=) and URL-encoded (&api-key=); some calls fail for good, so that text reaches
    pairs.jsonl, run.json, the reports and the terminal."""
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 30))
    config = env_key_config(tmp_path / "equiv.toml", max_retries=0, judge_retries=0)
    with LoopbackServer(seed=8, api_key=key, quote_key=True, rate_500=0.2, rate_429=0.1) as srv:
        for var in ENV_KEY_VARS:
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_API_BASE", srv.base_url)
        r = run_subprocess(
            "compare",
            str(traffic),
            "--config",
            str(config),
            "--out",
            str(tmp_path / "reports"),
            env={"LITELLM_LOG": "DEBUG"},
        )
        sent = [q["headers"].get("authorization") for q in srv.requests]
        failed = sum(q["status"] != 200 for q in srv.requests)
    assert r.exit_code == 0, r.stderr[-2000:]
    assert sent and all(h == f"Bearer {key}" for h in sent)  # litellm really sent the environment's key
    assert failed > 0
    pairs = (next((tmp_path / "reports").iterdir()) / "pairs.jsonl").read_text()
    assert "upstream.invalid" in pairs and "key=***" in pairs  # the quoted URL reached the file, redacted
    assert_written_nowhere(key, tmp_path / "reports", r.stdout, r.stderr)


def test_an_environment_key_refused_and_quoted_back_is_written_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = GEMINI_LIKE
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 30))
    config = env_key_config(tmp_path / "equiv.toml")
    with LoopbackServer(seed=8, api_key="sk-the-right-one", quote_key=True) as srv:
        for var in ENV_KEY_VARS:
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_API_BASE", srv.base_url)
        r = run_subprocess("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"))
        n = len(srv.requests)
    assert r.exit_code == 4 and "authentication failed" in r.stderr, r.stderr[-2000:]
    assert "OPENAI_API_KEY" in r.stderr  # says which variable to check
    assert n <= 8
    assert_written_nowhere(key, tmp_path / "reports", r.stdout, r.stderr)


# -- a key that is missing is exit 2 before any call ----------------------------------------------------------


def clear_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.endswith(("_API_KEY", "_API_BASE", "_BASE_URL", "_AUTH_TOKEN")):
            monkeypatch.delenv(var, raising=False)
    # were a call made after all, it would fail at once instead of backing off for minutes
    monkeypatch.setenv("EQUIV_BACKOFF_BASE_S", "0.001")
    monkeypatch.setenv("EQUIV_BACKOFF_MAX_S", "0.001")


def readme_command(equiv_cli, tmp_path: Path, *models: str):
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 5))
    baseline, candidate, judge = models
    return equiv_cli(
        "compare",
        str(traffic),
        "--baseline",
        baseline,
        "--candidate",
        candidate,
        "--judge",
        judge,
        "--out",
        str(tmp_path / "reports"),
        "--quiet",
    )


@pytest.mark.parametrize("blank", [False, True], ids=["unset", "empty"])
def test_readme_command_without_openai_api_key_says_set_it_and_exits_2_before_any_call(
    equiv_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blank: bool
) -> None:
    clear_provider_keys(monkeypatch)
    if blank:
        monkeypatch.setenv("OPENAI_API_KEY", "")
    r = readme_command(equiv_cli, tmp_path, "gpt-4o", "gpt-4o-mini", "gpt-4.1")
    assert r.exit_code == 2, (r.exit_code, r.stderr[-2000:])
    assert "set OPENAI_API_KEY" in r.stderr and "gpt-4o-mini" in r.stderr and "gpt-4.1" in r.stderr
    assert r.stderr.count("set OPENAI_API_KEY") == 1  # said once, for both models that are called
    assert "InternalServerError" not in r.stderr and "run again later" not in r.stderr
    assert "Traceback" not in r.stderr
    assert not list((tmp_path / "reports").rglob("calls.jsonl"))  # nothing was bought, not even tried


def test_a_missing_key_of_another_provider_is_named_with_its_alternatives(
    equiv_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_provider_keys(monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + secrets.token_hex(8))  # the judge's key is there
    r = readme_command(equiv_cli, tmp_path, "gpt-4o", "gemini/gemini-2.5-flash", "gpt-4.1")
    assert r.exit_code == 2, r.stderr[-2000:]
    assert "gemini/gemini-2.5-flash" in r.stderr and "GEMINI_API_KEY" in r.stderr and " or " in r.stderr
    assert "OPENAI_API_KEY" not in r.stderr


def test_the_logged_baseline_needs_no_key(equiv_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In logged mode the baseline is priced, never called: its provider's key is not asked for."""
    clear_provider_keys(monkeypatch)
    r = readme_command(equiv_cli, tmp_path, "claude-sonnet-4-5", "fake/skill-60", "fake/judge")
    assert r.exit_code == 0, r.stderr[-2000:]
