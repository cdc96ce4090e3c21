"""The ONLY module that imports litellm: one async call -> Completion, prices, token counts.

litellm is imported lazily (it costs ~4 s of CPU) so `equiv --help` stays instant.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from equiv.config import Settings
from equiv.errors import EquivError, InputError, PriceError
from equiv.llm import answer, fake, secrets
from equiv.local import UNSUPPORTED_HINT, is_local, unsupported_params
from equiv.schema import Completion

FAKE_PREFIX = "fake/"
LOCAL_TIMEOUT_S = 1800.0  # a CPU server queues requests: a long wait is not a failure


# `equiv` sets this: the process is the CLI's own, so what is alive once litellm is imported (about a
# million objects: modules, classes, its price map) lives as long as the process, and is frozen out of the
# garbage collector's full passes (gc.freeze) instead of being re-scanned by each of them
FREEZE_AFTER_IMPORT = False


@lru_cache(maxsize=1)
def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # importing litellm allocates ~1M long-lived objects, and the collector's full passes over the growing heap
    # (five or six of them) cost about 0.7 s of the 3 s import on this machine: none while importing
    collecting = gc.isenabled()
    gc.disable()
    try:
        import litellm
    finally:
        if FREEZE_AFTER_IMPORT:
            gc.freeze()
        if collecting:
            gc.enable()

    litellm.suppress_debug_info = True
    litellm.disable_hf_tokenizer_download = True
    litellm.drop_params = False
    litellm.telemetry = False
    litellm.set_verbose = False
    # litellm's debug log (LITELLM_LOG=DEBUG, set_verbose) prints request details: keep it off, whatever the env;
    # what it still logs (errors, which may quote a provider's URL with ?key=) is redacted like any provider text
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore", "openai"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.ERROR)
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, _RedactingFilter) for f in target.filters):
                target.addFilter(_RedactingFilter())
    _register_fake_provider(litellm)
    return litellm


class _RedactingFilter(logging.Filter):
    """A log record from litellm or its HTTP stack, with every known secret removed before it is shown."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
        except Exception:
            return False
        record.msg, record.args, record.exc_info = redact(text), None, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _register_fake_provider(litellm: Any) -> None:
    """`fake/<name>` runs through litellm's real call path with the simulated world of fake.py."""
    from litellm import CustomLLM, ModelResponse

    class FakeProvider(CustomLLM):  # type: ignore[misc]
        def _respond(self, model: str, messages: list[dict[str, Any]], optional_params: dict[str, Any]) -> Any:
            seed = optional_params.get("seed")
            text, pt, ct = fake.reply(model, messages, seed if isinstance(seed, int) else 0)
            message, finish = fake.shape(model, messages, text, optional_params.get("tools"))
            return ModelResponse(
                model=f"fake/{model}",
                choices=[{"index": 0, "finish_reason": finish, "message": message}],
                usage={"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
            )

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            return self._respond(model, messages, kwargs.get("optional_params") or {})

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            return self._respond(model, messages, kwargs.get("optional_params") or {})

    if not any(p.get("provider") == "fake" for p in litellm.custom_provider_map):
        litellm.custom_provider_map.append({"provider": "fake", "custom_handler": FakeProvider()})
        from litellm.utils import custom_llm_setup

        custom_llm_setup()


@dataclass(frozen=True)
class ModelSpec:
    """How to call one model and what it costs. Holds the NAME of the key's env var, never the key."""

    name: str  # the name the user wrote (reports use it)
    call_model: str  # the litellm model string
    api_base: str | None
    api_key_env: str | None
    input_per_token: float
    output_per_token: float
    timeout_s: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_per_token + completion_tokens * self.output_per_token


def resolve_model(name: str, settings: Settings) -> ModelSpec:
    """Settings + price of a model; an unknown price is refused here, before any call (exit 2)."""
    ms = settings.model_settings(name)
    local = is_local(name)
    call_model = ms.litellm_model or (f"openai/{name}" if local else name)
    in_p = ms.input_cost_per_mtok
    out_p = ms.output_cost_per_mtok
    if local:  # served on this machine: free unless the config prices it (run_notes says so)
        in_p = 0.0 if in_p is None else in_p
        out_p = 0.0 if out_p is None else out_p
    if in_p is None or out_p is None:
        known = _known_price(call_model)
        if known is None:
            raise PriceError(
                f"no price known for model '{name}': add to your config\n"
                f'  [models."{name}"]\n  input_cost_per_mtok = ...   # USD per million tokens\n'
                f"  output_cost_per_mtok = ...\n(cost is never assumed to be zero; write 0 if it truly is free)"
            )
        in_p = in_p if in_p is not None else known[0]
        out_p = out_p if out_p is not None else known[1]
    return ModelSpec(
        name=name,
        call_model=call_model,
        api_base=ms.api_base,
        api_key_env=ms.api_key_env,
        input_per_token=in_p / 1e6,
        output_per_token=out_p / 1e6,
        timeout_s=ms.timeout or (max(settings.timeout_s, LOCAL_TIMEOUT_S) if local else settings.timeout_s),
    )


# Providers that also authenticate without any variable litellm's validate_environment knows of (a cloud
# role, a profile or credentials file, a local daemon, Azure AD): a missing variable there is not proof.
_AMBIENT_AUTH_PROVIDERS = frozenset(
    {
        "bedrock",
        "bedrock_converse",
        "sagemaker",
        "sagemaker_chat",
        "vertex_ai",
        "vertex_ai_beta",
        "ollama",
        "ollama_chat",
        "azure",
        "azure_ai",
        "azure_text",
        "lm_studio",
        "hosted_vllm",
        "llamafile",
        "custom_openai",
    }
)
# providers where any one of the names litellm lists is enough
_ANY_OF_PROVIDERS = frozenset({"gemini"})
_env_lock = threading.Lock()


def needs_environment_key(spec: ModelSpec) -> bool:
    """Whether litellm will read this model's key from the environment by itself: not a fake/ or local/
    model, and nothing configured for it (an api_base gets equiv's placeholder key, an api_key_env its own)."""
    return not (spec.call_model.startswith(FAKE_PREFIX) or is_local(spec.name) or spec.api_base or spec.api_key_env)


def missing_environment_keys(spec: ModelSpec) -> list[str]:
    """The credential variables litellm says it lacks to call this model as called (empty: none missing,
    or litellm cannot tell). A variable set to an empty string counts as missing. For a provider that takes
    any one of several (Gemini: GEMINI_API_KEY or GOOGLE_API_KEY), all of them are listed, and none is
    missing when one is set."""
    if not needs_environment_key(spec):
        return []
    litellm = _litellm()
    try:
        provider = litellm.get_llm_provider(model=spec.call_model)[1]
    except Exception:
        return []
    if provider in _AMBIENT_AUTH_PROVIDERS:
        return []
    blank = [k for k, v in os.environ.items() if not v.strip() and secrets.is_secret_name(k)]
    try:
        with _env_lock:  # validate_environment counts "" as set: hide blank variables while it looks
            saved = {k: os.environ.pop(k) for k in blank}
            try:
                found = litellm.validate_environment(model=spec.call_model)
            finally:
                os.environ.update(saved)
    except Exception:
        return []
    names = list(dict.fromkeys(str(k) for k in (found or {}).get("missing_keys") or []))
    missing = [k for k in names if secrets.is_secret_name(k) and not os.environ.get(k, "").strip()]
    if provider in _ANY_OF_PROVIDERS and len(missing) < len(names):
        return []  # one of its alternatives is set
    return missing


def check_credentials(specs: Iterable[ModelSpec], settings: Settings | None = None) -> None:
    """Refuse (exit 2) before any call a model whose key litellm would read from the environment and cannot
    find there, naming the variable(s) and the model(s). A configured key (api_key_env) named but unset is
    refused by `settings.api_key`; fake/, local/ and api_base models need no environment key."""
    by_vars: dict[str, list[str]] = {}  # "OPENAI_API_KEY" -> models
    for spec in dict.fromkeys(specs):
        if settings is not None and spec.api_key_env:
            settings.api_key(spec.name)  # raises if its api_key_env is named but unset
        missing = missing_environment_keys(spec)
        if missing:
            joiner = " or " if _provider(spec) in _ANY_OF_PROVIDERS else " and "
            models = by_vars.setdefault(joiner.join(missing), [])
            if spec.name not in models:
                models.append(spec.name)
    if not by_vars:
        return
    lines = [
        f"no API key for {', '.join(models)}: set {names} (litellm reads it from the environment for "
        f"{'this model' if len(models) == 1 else 'these models'}), e.g. export {names.split()[0]}=..."
        for names, models in by_vars.items()
    ]
    raise InputError("\n".join(lines) + "\nNo call was made.")


def _provider(spec: ModelSpec) -> str | None:
    try:
        return str(_litellm().get_llm_provider(model=spec.call_model)[1])
    except Exception:
        return None


def environment_key_hint(spec: ModelSpec) -> str:
    """Where the key that was refused came from, for the abort message: '$OPENAI_API_KEY' or ''."""
    if spec.api_key_env:
        return f"${spec.api_key_env}"
    provider = _provider(spec) if needs_environment_key(spec) else None
    if provider is None:
        return ""
    guess = {"gemini": "GEMINI_API_KEY", "together_ai": "TOGETHERAI_API_KEY"}.get(
        provider, f"{provider.upper()}_API_KEY"
    )
    return f"${guess} (read by litellm from the environment)" if os.environ.get(guess) else ""


def _known_price(call_model: str) -> tuple[float, float] | None:
    """USD per million tokens from the simulated world or litellm's local price map."""
    if call_model.startswith(FAKE_PREFIX):
        return fake.price(call_model)
    litellm = _litellm()
    candidates = [call_model]
    if "/" in call_model:
        candidates.append(call_model.split("/", 1)[1])
    for key in candidates:
        info = litellm.model_cost.get(key)
        if info and info.get("input_cost_per_token") is not None and info.get("output_cost_per_token") is not None:
            return info["input_cost_per_token"] * 1e6, info["output_cost_per_token"] * 1e6
    return None


def count_tokens(spec: ModelSpec, *, messages: list[dict[str, Any]] | None = None, text: str | None = None) -> int:
    """Tokens as the model would count them (litellm's tokenizer; the simulated one for fake/)."""
    if spec.call_model.startswith(FAKE_PREFIX):
        if messages is not None:
            return sum(fake.count_tokens(fake.content_text(m)) + 3 for m in messages)
        return fake.count_tokens(text or "")
    litellm = _litellm()
    try:
        if messages is not None:
            return int(litellm.token_counter(model=spec.call_model, messages=messages))
        return int(litellm.token_counter(model=spec.call_model, text=text or "", count_response_tokens=True))
    except Exception:  # tokenizer unavailable for this model: ~4 chars a token
        if messages is not None:
            return sum(len(fake.content_text(m)) // 4 + 4 for m in messages)
        return len(text or "") // 4 + 1


class CallError(Exception):
    """A failed call, classified for the runner. The message never contains an API key: it is redacted here,
    whoever builds it (secrets.redact: every key the call can use, by value, and anything shaped like one).

    `maybe_billed`: the request reached the provider and may have been generated and billed although no
    answer came back (a read timeout); the runner counts its reservation as spent, so the cap stays hard.
    `resend`: --batch: the batch ended (expired, cancelled, failed) before it answered this request, which was
    never run: the runner sends it again in a later batch, without backoff and without counting it as a
    provider failure (a whole batch expiring is not hundreds of failed calls).
    """

    def __init__(
        self,
        kind: str,
        message: str,
        retry_after: float | None = None,
        *,
        maybe_billed: bool = False,
        resend: bool = False,
    ) -> None:
        message = secrets.redact(message)
        super().__init__(message)
        self.kind = kind  # "auth" | "transient" | "permanent"
        self.message = message
        self.retry_after = retry_after
        self.maybe_billed = maybe_billed
        self.resend = resend


def _retry_after(exc: Exception) -> float | None:
    """Seconds the provider asked us to wait. litellm keeps the real response headers in
    `litellm_response_headers` (its `response` is a stand-in without them)."""
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if not headers or not hasattr(headers, "get"):
            continue
        for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
            raw = headers.get(name)
            if raw is None:
                continue
            try:
                return max(0.0, float(raw) * scale)
            except (TypeError, ValueError):
                try:  # an HTTP date
                    when = parsedate_to_datetime(str(raw))
                    return max(0.0, when.timestamp() - time.time())
                except (TypeError, ValueError, IndexError):
                    continue
    return None


# What a provider (or the SDK under litellm) says when the credentials are missing or wrong, whatever the
# exception class litellm maps it to: OpenAI's "Missing credentials" comes as an InternalServerError (500),
# Gemini's "API key not valid" as a BadRequestError, "Missing Gemini API key" as an APIConnectionError.
# Retrying those only repeats them: they abort the run at once, like a 401.
_CREDENTIALS_ERROR = re.compile(
    r"(?i)missing credentials|missing\b[\w ]{0,40}\bapi[ _-]?key|\bno api[ _-]?key\b"
    r"|api[ _-]?key (?:is )?(?:not valid|invalid|missing|required|not set|not found|expired|revoked)"
    r"|api_key client option must be set|(?:incorrect|invalid|bad|expired|revoked) (?:x-)?api[ _-]?key"
    r"|invalid_api_key|authentication_error|\bunauthenticated\b|invalid authentication|invalid credentials"
    r"|\bunauthori[sz]ed\b|unable to locate credentials|default credentials were not found"
    r"|security token included in the request is (?:invalid|expired)"
)


def redact(text: str, secret: str | None = None) -> str:
    """Provider text with every key the call can use removed (by value: the call's own, the configured ones,
    those litellm reads from the environment), then anything shaped like a key. It ends up in files and on
    screen. See equiv.llm.secrets."""
    return secrets.redact(text, (secret,))


def _classify(exc: Exception, secret: str | None) -> CallError:
    litellm = _litellm()
    name = type(exc).__name__
    # redact the whole text before cutting it, so a key split by the cut cannot survive in part
    text = redact(str(exc), secret)
    msg = text.splitlines()[0][:300] if text.strip() else name
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return CallError("auth", f"authentication failed ({name}): {msg}")
    if not isinstance(exc, litellm.RateLimitError | litellm.ContextWindowExceededError) and (
        _CREDENTIALS_ERROR.search(text)
    ):
        return CallError("auth", f"authentication failed ({name}): {msg}")
    if isinstance(exc, litellm.Timeout):  # sent, and perhaps generated and billed, with no answer back
        return CallError("transient", f"{name}: {msg}", _retry_after(exc), maybe_billed=True)
    transient = (
        litellm.RateLimitError,
        litellm.APIConnectionError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
    )
    if isinstance(exc, transient):
        return CallError("transient", f"{name}: {msg}", _retry_after(exc))
    if isinstance(exc, litellm.UnsupportedParamsError):
        return CallError("permanent", f"unsupported parameter ({name}): {msg}")
    if isinstance(exc, litellm.APIError) and getattr(exc, "status_code", 500) >= 500:
        return CallError("transient", f"{name}: {msg}")
    return CallError("permanent", f"{name}: {msg}")


# -- the spend cap's arithmetic (SPEC "No surprise spend") ------------------------------------------------
OUTPUT_LIMIT_KEYS = ("max_tokens", "max_completion_tokens")
MESSAGE_OVERHEAD_TOKENS = 16  # role markers and separators a chat template adds per message
PROMPT_OVERHEAD_TOKENS = 64  # the template's own priming tokens
PARAMS_OVERHEAD_TOKENS = 1024  # a provider's own wrapper around tools / a response schema (Anthropic: ~350)
MEDIA_PART_TOKENS = 8192  # one image part, whatever its size (GPT-4o <= 1445, Claude ~1600, GPT-4.1 ~2500)
_MEDIA_TYPES = frozenset({"image_url", "input_image", "image"})
_PROMPT_PARAMS = ("tools", "functions", "response_format", "tool_choice")


def _limit(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def with_output_limit(params: dict[str, Any], default_max_tokens: int) -> dict[str, Any]:
    """The params as sent: a call that sets no output limit gets `max_tokens = default_max_tokens`, the limit
    it is reserved at, so no answer can cost more than its reservation. A limit the params set
    (`max_tokens` or `max_completion_tokens`) is kept as it is; both are never sent where one was."""
    if any(_limit(params.get(k)) is not None for k in OUTPUT_LIMIT_KEYS):
        return params
    sent = {k: v for k, v in params.items() if k not in OUTPUT_LIMIT_KEYS}
    sent["max_tokens"] = default_max_tokens
    return sent


def output_token_bound(params: dict[str, Any], default_max_tokens: int) -> int:
    """The most output tokens a call can be billed for: its limit (reasoning tokens included: providers
    count them inside max_tokens / max_completion_tokens) times `n` answers."""
    limits = [v for v in (_limit(params.get(k)) for k in OUTPUT_LIMIT_KEYS) if v is not None]
    n = _limit(params.get("n")) or 1
    return (max(limits) if limits else default_max_tokens) * n


def _utf8_len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))


def prompt_token_bound(messages: list[dict[str, Any]], params: dict[str, Any] | None = None) -> int:
    """An upper bound on the input tokens a call is billed for, under any tokenizer: a token is at least one
    UTF-8 byte (byte-level BPE; ~4 bytes for English, 1 per CJK character or more), so the serialized
    messages' bytes bound them, plus each message's template overhead; tool and response-format schemas
    are input too. An image part counts MEDIA_PART_TOKENS (its URL or base64 data is not what is billed);
    other media count their bytes."""
    total = PROMPT_OVERHEAD_TOKENS
    for msg in messages:
        total += MESSAGE_OVERHEAD_TOKENS
        content = msg.get("content") if isinstance(msg, dict) else msg
        rest = {k: v for k, v in msg.items() if k != "content"} if isinstance(msg, dict) else {}
        total += _utf8_len(rest) if rest else 0
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind in _MEDIA_TYPES:
                    total += MEDIA_PART_TOKENS
                elif isinstance(part, dict) and kind == "text" and isinstance(part.get("text"), str):
                    total += _utf8_len(part["text"]) + 8
                else:
                    total += _utf8_len(part)
        elif content is not None:
            total += _utf8_len(content)
    for key in _PROMPT_PARAMS:
        if (params or {}).get(key) is not None:
            total += _utf8_len(params[key]) + PARAMS_OVERHEAD_TOKENS  # type: ignore[index]
    return total


def billed_completion_tokens(usage: Any) -> int | None:
    """Output tokens as billed: `completion_tokens`, plus reasoning tokens when a provider reports them apart.

    OpenAI (and litellm's own adapters, Gemini's included) count reasoning inside completion_tokens; an
    OpenAI-compatible server may report `completion_tokens_details.reasoning_tokens` beside a
    completion_tokens without them. They are apart when total_tokens says so (it covers them), or when
    there are more of them than completion tokens."""
    ct = _field(usage, "completion_tokens")
    if not isinstance(ct, int | float) or isinstance(ct, bool):
        return None
    details = _field(usage, "completion_tokens_details")
    reasoning = _field(details, "reasoning_tokens") if details is not None else None
    if not isinstance(reasoning, int | float) or isinstance(reasoning, bool):
        reasoning = _field(usage, "reasoning_tokens")
    if not isinstance(reasoning, int | float) or isinstance(reasoning, bool) or reasoning <= 0:
        return int(ct)
    pt, total = _field(usage, "prompt_tokens"), _field(usage, "total_tokens")
    known = isinstance(pt, int | float) and isinstance(total, int | float)
    apart = (known and total >= pt + ct + reasoning) or (not known and reasoning > ct)
    return int(ct + reasoning) if apart else int(ct)


async def acomplete(
    spec: ModelSpec, messages: list[dict[str, Any]], params: dict[str, Any], api_key: str | None
) -> Completion:
    """One call through litellm. Retries are the runner's job: num_retries=0 here."""
    litellm = _litellm()
    kwargs: dict[str, Any] = dict(params)
    kwargs.update(model=spec.call_model, messages=messages, num_retries=0, timeout=spec.timeout_s)
    if kwargs.get("tools"):
        # the traffic's tools go to the model as they are, and its tool calls come back as its answer: never via
        # litellm's MCP gateway (which would run tools, and without the optional `mcp` package fails every call)
        kwargs["_skip_mcp_handler"] = True
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    if api_key:
        kwargs["api_key"] = api_key
    elif spec.api_base and spec.call_model.startswith("openai/"):
        kwargs["api_key"] = "sk-no-key"  # local OpenAI-compatible servers need some key
    t0 = time.perf_counter()
    try:
        if is_local(spec.name) and not spec.api_base:
            resp = await _local_completion(spec, kwargs)
        else:
            resp = await litellm.acompletion(**kwargs)
    except (CallError, EquivError):  # EquivError: a local server that cannot start (the user must act)
        raise
    except Exception as exc:
        raise _classify(exc, api_key) from None
    latency = time.perf_counter() - t0
    return completion_from(spec, resp, messages, params, latency)


def completion_from(
    spec: ModelSpec, resp: Any, messages: list[dict[str, Any]], params: dict[str, Any], latency: float = 0.0
) -> Completion:
    """A provider's chat-completion response (litellm's ModelResponse, real-time or read from a batch's output
    file) as equiv's Completion, priced as `spec` at the real-time price."""
    # The reply as the user would get it: text, tool calls, a refusal, or what a content filter let through,
    # each rendered explicitly (equiv.llm.answer), never a silent "" that loses to the other side.
    try:
        choice = resp.choices[0]
        message = choice.message
        if message is None:
            raise AttributeError("message")
        finish = getattr(choice, "finish_reason", None)
        text = answer.render_message(message, finish if isinstance(finish, str) else None)
        calls = answer.tool_calls_of(message)
        generated = answer.generated_text(message)
    except (AttributeError, IndexError, KeyError, TypeError) as exc:  # a 200 without an answer in it
        raise CallError(
            "permanent", f"malformed response from {spec.name}: no choices[0].message.content ({type(exc).__name__})"
        ) from None
    usage = getattr(resp, "usage", None)
    pt = getattr(usage, "prompt_tokens", None)
    ct = billed_completion_tokens(usage)  # reasoning tokens reported apart are billed too
    if pt is None:
        pt = count_tokens(spec, messages=messages)
    if ct is None:
        ct = count_tokens(spec, text=generated)  # what the model wrote, not equiv's notices
    return Completion(
        model=spec.name,
        output=text,
        prompt_tokens=int(pt),
        completion_tokens=int(ct),
        cost_usd=spec.cost(int(pt), int(ct)),
        latency_s=latency,
        finish_reason=finish if isinstance(finish, str) else None,
        first_token_logprobs=first_token_logprobs(choice) if params.get("logprobs") else None,
        tool_calls=calls or None,
    )


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def first_token_logprobs(choice: Any) -> dict[str, float] | None:
    """{token: logprob} of the alternatives for the first decoded token (OpenAI `logprobs.content[0]`)."""
    content = _field(_field(choice, "logprobs"), "content")
    if not content:
        return None
    first = content[0]
    out: dict[str, float] = {}
    alts = _field(first, "top_logprobs") or [{"token": _field(first, "token"), "logprob": _field(first, "logprob")}]
    for alt in alts:
        token, logprob = _field(alt, "token"), _field(alt, "logprob")
        if isinstance(token, str) and isinstance(logprob, int | float) and token not in out:
            out[token] = float(logprob)
    return out or None


async def _local_completion(spec: ModelSpec, kwargs: dict[str, Any]) -> Any:
    """A local/ model: refuse what llama.cpp cannot serve, then call its server during a CPU turn."""
    from equiv.local.server import active

    bad = unsupported_params(
        {
            k: v
            for k, v in kwargs.items()
            if k not in ("model", "messages", "num_retries", "timeout", "api_key", "_skip_mcp_handler")
        }
    )
    if bad:
        raise CallError(
            "permanent",
            f"{spec.name}: {UNSUPPORTED_HINT} parameter(s) {', '.join(bad)}; "
            f"remove them from the traffic's params or qualify a hosted model",
        )
    async with active().turn(spec.name) as api_base:
        kwargs["api_base"] = api_base
        kwargs.setdefault("api_key", "sk-no-key")
        return await _litellm().acompletion(**kwargs)


def supports_json_schema(spec: ModelSpec) -> bool:
    if spec.call_model.startswith(FAKE_PREFIX):
        return False
    if is_local(spec.name) and not spec.api_base:
        return True  # llama.cpp constrains decoding to the schema (a small judge cannot drift from it)
    try:
        return bool(_litellm().supports_response_schema(model=spec.call_model))
    except Exception:
        return False


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("equiv", "litellm", "numpy", "scipy", "pydantic", "xllamacpp"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            if pkg != "xllamacpp":  # the local runtime is optional (equiv[local])
                out[pkg] = "unknown"
    return out
