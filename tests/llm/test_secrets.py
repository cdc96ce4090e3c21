"""Redaction by value: every key a call can use, in every form a provider quotes it back."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from equiv.llm import secrets
from equiv.llm.client import redact

GEMINI = "AIzaSy" + "Bq4wX9kLmN0pQrStUvWxYz12345678_-z"
AZURE = "3f9c" + "a1b2+c3d4/e5f6=g7h8i9j0k1"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GEMINI_API_KEY", "AZURE_API_KEY", "AWS_SECRET_ACCESS_KEY", "FEATURE_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_an_environment_key_of_any_shape_is_removed_wherever_it_is_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI)
    monkeypatch.setenv("AZURE_API_KEY", AZURE)
    text = (
        f"400 for url https://generativelanguage.googleapis.com/v1beta/models/x:generateContent?key={GEMINI}"
        f"&alt=sse; retry https://h/v1?api-key={quote(AZURE, safe='')} body={json.dumps({'k': AZURE})} "
        f"masked {GEMINI[:8]}****{GEMINI[-8:]}"
    )
    out = redact(text)
    for form in (GEMINI, AZURE, quote(AZURE, safe=""), json.dumps(AZURE)[1:-1], GEMINI[:8], GEMINI[-8:]):
        assert form not in out, form
    assert "generativelanguage.googleapis.com" in out  # only the secret goes, not the message


def test_by_value_not_by_shape() -> None:
    """The old shape pattern let an AIza key in ?key= through; the value layer does not need a shape."""
    odd = "zz9" + "Q7mT2vL8pX4nR6sK1wY3"  # looks like nothing
    assert odd in redact(f"quoted: {odd}")  # unknown and shapeless: cannot be known
    assert odd not in redact(f"quoted: {odd}", odd)  # the call's own key
    secrets.remember(odd)  # a configured key (api_key_env), remembered by the runner
    assert odd not in redact(f"quoted: {odd}")


def test_short_or_unrelated_values_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_TOKEN", "1")  # a flag, not a key
    monkeypatch.setenv("EQUIV_SOMETHING", "abcdefghijklmnop")  # not a secret's name
    assert redact("retry 1 of 3: abcdefghijklmnop") == "retry 1 of 3: abcdefghijklmnop"
    assert secrets.is_secret_name("AWS_SECRET_ACCESS_KEY") and secrets.is_secret_name("WATSONX_APIKEY")
    assert secrets.is_secret_name("AZURE_AD_TOKEN") and not secrets.is_secret_name("OPENAI_API_BASE")


def test_the_shape_layer_still_catches_keys_nobody_told_us_about() -> None:
    text = (
        "Bearer abcdefghijkl api_key=ABCDEF123456 https://x/y?key=QWERTYUIOP123&alt=json "
        "AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA AKIAABCDEFGHIJKLMNOP x-goog-api-key: GOOGKEY1234"
    )
    out = redact(text)
    for s in ("abcdefghijkl", "ABCDEF123456", "QWERTYUIOP123", "AIzaSyAAAA", "AKIAABCDEFGHIJKLMNOP", "GOOGKEY1234"):
        assert s not in out, (s, out)
    assert "alt=json" in out


def test_answers_lose_whole_keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI)
    found = secrets.known_secrets()
    assert secrets.redact_values(f"the key is {GEMINI}.", found, ends=False) == "the key is ***."
    assert secrets.redact_values(f"starts {GEMINI[:8]} only", found, ends=False) == f"starts {GEMINI[:8]} only"


def test_the_environment_scan_is_reused_but_a_changed_or_new_key_is_seen_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """equiv does not re-scan os.environ before every call; a key set or changed between two calls is still
    redacted from the next text."""
    monkeypatch.setenv("AZURE_API_KEY", AZURE)
    assert AZURE not in redact(f"a {AZURE}")
    other = "9d8c" + "7b6a5f4e3d2c1b0a99887766"
    monkeypatch.setenv("AZURE_API_KEY", other)  # same count of variables, new value
    assert other not in redact(f"b {other}")
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI)  # a new variable
    assert GEMINI not in redact(f"c {GEMINI}")
