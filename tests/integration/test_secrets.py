"""Secrets: the API key comes from the environment only and is never written or printed.

The loopback server is made careless on purpose: its 401, 429 and 500 error bodies quote the request
headers back, Authorization included, the way some providers and proxies do. The key must still appear
in no file the run writes, nowhere in stdout/stderr (litellm's debug log requested via LITELLM_LOG
included), and in no exception message.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

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
        if key[i:i + 10] in text:
            found.append(f"fragment {key[i:i + 10]!r}")
            break
    if re.search(r"Bearer\s+(?!\*)\S{6,}", text):
        found.append("a bearer token")
    return found


def written_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def run_case(tmp_path: Path, srv: LoopbackServer, key: str, **cfg: object):
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 30))
    config = write_config(tmp_path / "equiv.toml", srv, baseline="skill-95", candidate="skill-60", per_type=30,
                          key_env=KEY_ENV, **cfg)
    r = run_subprocess("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"),
                       env={KEY_ENV: key, "LITELLM_LOG": "DEBUG"}, timeout=300)
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


def test_a_missing_key_variable_is_named_and_nothing_is_called(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with LoopbackServer(seed=8) as srv:
        traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 5))
        config = write_config(tmp_path / "equiv.toml", srv, baseline="skill-95", candidate="skill-60",
                              key_env=KEY_ENV)
        r = run_subprocess("compare", str(traffic), "--config", str(config), "--out", str(tmp_path / "reports"))
        assert not srv.requests
    assert r.exit_code == 2 and KEY_ENV in r.stderr and "Traceback" not in r.stderr


def test_provider_error_text_is_redacted_in_exception_messages() -> None:
    import litellm

    from equiv.llm.client import _classify

    key = "sk-abc-" + secrets.token_hex(12)
    body = f'{{"error": {{"message": "bad", "headers": {{"authorization": "Bearer {key}", "x-api-key": "{key}"}}}}}}'
    for exc in (litellm.InternalServerError(body, llm_provider="openai", model="m"),
                litellm.AuthenticationError(f"Incorrect API key provided: {key[:8]}****{key[-4:]}. {body}",
                                            llm_provider="openai", model="m")):
        err = _classify(exc, key)
        assert not leaks(key, err.message) and not leaks(key, str(err)), err.message
    # a key-like string from elsewhere (not ours) is removed too
    other = _classify(litellm.InternalServerError("echo: api_key=ABCDEF123456 Bearer zzzzzzzzzzzz",
                                                  llm_provider="openai", model="m"), None)
    assert "ABCDEF123456" not in other.message and "zzzzzzzzzzzz" not in other.message


def test_litellm_debug_output_is_off() -> None:
    import logging

    from equiv.llm import client

    litellm = client._litellm()
    assert litellm.suppress_debug_info is True and litellm.set_verbose is False
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
