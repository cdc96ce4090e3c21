"""Redaction of API keys by value, from every text a provider sends back before it is written or shown.

A key is removed wherever it appears, whatever its shape (an ``AIza...`` Gemini key looks like no
other), because equiv knows the values a call can use:

- the keys the config names (``api_key_env``), remembered by the runner;
- every environment variable litellm may read a credential from (``OPENAI_API_KEY``, ``GEMINI_API_KEY``,
  ``AWS_SECRET_ACCESS_KEY``, ``AZURE_AD_TOKEN``, ...): any variable whose name says it holds a key, a token,
  a secret, a password or credentials, with a value long enough to be one (so "1" or "true" are left alone);
- keys set on the litellm module itself (``litellm.api_key``, ``litellm.openai_key``, ...).

Each value is removed in the forms a provider quotes it: as is, URL-encoded (``?key=``, ``&api-key=``),
JSON-escaped, base64, and its first and last 8 characters (a provider that masks the middle still shows
the ends). The shape patterns (a bearer token, an ``api_key=...`` field, ``sk-...``, ``AIza...``, a
secret-looking URL query parameter) stay as a second layer for keys equiv was never told about.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_ENV_SECRET_LEN = 8  # shorter values of "secret" variables are flags or modes, not keys
MIN_CONFIGURED_LEN = 4  # a configured key is redacted even when it is short; shorter would eat letters
ENDS = 8  # a masked key ("sk-proj-****abcd") still shows its ends: both 8-character ends are removed

# names of variables that hold a credential: ..._API_KEY, ..._KEY, ..._TOKEN, ..._SECRET, ..._PASSWORD,
# WATSONX_APIKEY, CLARIFAI_PAT, SNOWFLAKE_JWT, VERTEXAI_CREDENTIALS, ...
_SECRET_NAME = re.compile(
    r"(?i)(?:^|_)(?:API_?KEY|KEY|KEYS|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PAT|JWT|CREDENTIALS?|AUTH)(?:_|$)"
    r"|APIKEY|SECRET|TOKEN|PASSWORD"
)
# credentials litellm documents under names the pattern above does not cover
_LITELLM_SECRET_VARS = frozenset(
    {
        "AZURE_AD_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "HF_TOKEN",
        "DATABRICKS_TOKEN",
        "SNOWFLAKE_JWT",
        "WATSONX_APIKEY",
        "WATSONX_ZENAPIKEY",
    }
)

_remembered: set[str] = set()
_lock = threading.Lock()

# the shape layer: what a provider may quote back in an error, whoever's key it is
_KEYLIKE = re.compile(
    r"(?i)(bearer\s+|basic\s+|(?:api[_-]?key|x-goog-api-key|authorization|x-api-key|access[_-]?token|secret"
    r"|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}&]+"
    r"|\b(?:sk|pk|rk|key)-[A-Za-z0-9_*.\-]{6,}"
    r"|\bAIza[0-9A-Za-z_\-]{20,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\b(?:ghp|gho|ghs|github_pat|hf|xox[abpr])_[A-Za-z0-9_\-]{16,}"
)
# a secret in a URL's query: ?key=..., &api-key=..., ?access_token=..., &sig=... (also URL-encoded: %3D)
_URL_SECRET = re.compile(
    r"(?i)([?&;](?:key|api[_-]?key|apikey|access[_-]?token|token|auth|sig|signature|client[_-]?secret|secret"
    r"|password|code)(?:=|%3D))[^&\s\"'#<>)\]]+"
)


def remember(*values: str | None) -> None:
    """Keys equiv itself read (a model's api_key_env): redacted from every text from now on."""
    with _lock:
        _remembered.update(v for v in values if v and len(v) >= MIN_CONFIGURED_LEN)


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a credential (memoized: the environment's
    names are checked before every call, and a regex per name per call was a visible share of the harness)."""
    return name.upper() in _LITELLM_SECRET_VARS or bool(_SECRET_NAME.search(name))


def environment_secrets(environ: dict[str, str] | None = None) -> set[str]:
    """Values of the environment variables a provider SDK may read a credential from."""
    env = os.environ if environ is None else environ
    return {v.strip() for k, v in env.items() if v and len(v.strip()) >= MIN_ENV_SECRET_LEN and is_secret_name(k)}


def _litellm_module_secrets() -> set[str]:
    """Keys set on litellm itself (litellm.api_key = ...), when litellm is imported (never imported here)."""
    mod = sys.modules.get("litellm")
    if mod is None:
        return set()
    out = set()
    for name in _litellm_key_attrs(id(mod)):
        try:
            value = getattr(mod, name, None)
        except Exception:
            continue
        if isinstance(value, str) and len(value) >= MIN_CONFIGURED_LEN:
            out.add(value)
    return out


@lru_cache(maxsize=2)
def _litellm_key_attrs(_module_id: int) -> tuple[str, ...]:
    mod = sys.modules.get("litellm")
    if mod is None:
        return ()
    return tuple(n for n in dir(mod) if not n.startswith("_") and (n.endswith("_key") or n == "api_key"))


_ENV_TTL_S = 1.0  # a full re-scan of os.environ at least once a second, whatever else happens
# (names of the credential variables, their values, len(os.environ), time of the scan, the secrets found)
_env_cache: tuple[tuple[str, ...], tuple[str | None, ...], tuple[str, ...], float, frozenset[str]] = (
    (),
    (),
    (),
    -1e9,
    frozenset(),
)


def _environment_secrets_now() -> frozenset[str]:
    """environment_secrets() of os.environ without scanning it before every call (a visible share of the
    harness's CPU per call): the scan is reused while the environment has as many variables, every
    credential variable it found still has its value, and it is less than a second old: a key set, changed
    or added is seen at once."""
    global _env_cache
    names, values, keys, stamp, found = _env_cache
    env = os.environ
    now = time.monotonic()
    current = tuple(env)  # the variables' names (no regex): a variable added, removed or renamed is seen
    if current == keys and now - stamp <= _ENV_TTL_S and tuple(env.get(k) for k in names) == values:
        return found
    names = tuple(k for k in current if is_secret_name(k))
    values = tuple(env.get(k) for k in names)
    found = frozenset(environment_secrets())
    _env_cache = (names, values, current, now, found)
    return found


def refresh_environment() -> None:
    """Read the environment's credentials again now (a run starts: its keys may have just been set)."""
    global _env_cache
    _env_cache = ((), (), (), -1e9, frozenset())


def known_secrets(extra: Iterable[str | None] = ()) -> frozenset[str]:
    """Every secret value a call can use right now: `extra`, remembered keys, environment, litellm."""
    with _lock:
        found = set(_remembered)
    found.update(v for v in extra if v and len(v) >= MIN_CONFIGURED_LEN)
    found |= _environment_secrets_now()
    found |= _litellm_module_secrets()
    return frozenset(found)


def _forms(secret: str, ends: bool) -> set[str]:
    """The ways a provider may quote a value back: as is, URL-encoded, JSON-escaped, base64 (and its ends)."""
    escaped = json.dumps(secret)[1:-1]
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        escaped,
        escaped.replace("/", "\\/"),
        base64.b64encode(secret.encode()).decode("ascii").rstrip("="),
    }
    if ends and len(secret) >= 2 * ENDS:
        forms |= {secret[:ENDS], secret[-ENDS:]}
    return {f for f in forms if len(f) >= MIN_CONFIGURED_LEN}


@lru_cache(maxsize=32)
def _value_pattern(secrets: frozenset[str], ends: bool) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for s in secrets:
        forms |= _forms(s, ends)
    if not forms:
        return None
    # longest first, so a whole key goes before its ends; case-insensitive, so %2f and %2F both go
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f))), re.IGNORECASE)


def redact_values(text: str, secrets: frozenset[str], *, ends: bool = True) -> str:
    """`text` with every known secret removed, by value only. `ends=False` removes whole values only
    (for model answers, where a key's first 8 characters alone, such as "sk-proj-", are ordinary text)."""
    if not text or not secrets:
        return text
    pattern = _value_pattern(secrets, ends)
    return pattern.sub(MASK, text) if pattern is not None else text


def redact(text: str, extra: Iterable[str | None] = ()) -> str:
    """Provider text made safe to write or print: known secrets by value, then anything shaped like one."""
    if not text:
        return text
    text = redact_values(text, known_secrets(extra))
    text = _URL_SECRET.sub(lambda m: m.group(1) + MASK, text)
    return _KEYLIKE.sub(lambda m: (m.group(1) or "") + MASK, text)
