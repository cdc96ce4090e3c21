"""The ONLY module that imports litellm: one async call -> Completion, prices, token counts.

litellm is imported lazily (it costs ~4 s of CPU) so `equiv --help` stays instant.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from equiv.config import Settings
from equiv.errors import EquivError, PriceError
from equiv.llm import fake
from equiv.local import UNSUPPORTED_HINT, is_local, unsupported_params
from equiv.schema import Completion

FAKE_PREFIX = "fake/"
LOCAL_TIMEOUT_S = 1800.0  # a CPU server queues requests: a long wait is not a failure


@lru_cache(maxsize=1)
def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # noqa: PLC0415 - deliberate lazy import

    litellm.suppress_debug_info = True
    litellm.disable_hf_tokenizer_download = True
    litellm.drop_params = False
    litellm.telemetry = False
    litellm.set_verbose = False
    # litellm's debug log (LITELLM_LOG=DEBUG, set_verbose) prints request details: keep it off, whatever the env
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore", "openai"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _register_fake_provider(litellm)
    return litellm


def _register_fake_provider(litellm: Any) -> None:
    """`fake/<name>` runs through litellm's real call path with the simulated world of fake.py."""
    from litellm import CustomLLM, ModelResponse  # noqa: PLC0415

    class FakeProvider(CustomLLM):  # type: ignore[misc]
        def _respond(self, model: str, messages: list[dict[str, Any]], optional_params: dict[str, Any]) -> Any:
            seed = optional_params.get("seed")
            text, pt, ct = fake.reply(model, messages, seed if isinstance(seed, int) else 0)
            return ModelResponse(
                model=f"fake/{model}",
                choices=[{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                usage={"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
            )

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:  # noqa: D401
            return self._respond(model, messages, kwargs.get("optional_params") or {})

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            return self._respond(model, messages, kwargs.get("optional_params") or {})

    if not any(p.get("provider") == "fake" for p in litellm.custom_provider_map):
        litellm.custom_provider_map.append({"provider": "fake", "custom_handler": FakeProvider()})
        from litellm.utils import custom_llm_setup  # noqa: PLC0415

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
    """A failed call, classified for the runner. The message never contains the API key."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # "auth" | "transient" | "permanent"
        self.message = message
        self.retry_after = retry_after


def _retry_after(exc: Exception) -> float | None:
    """Seconds the provider asked us to wait. litellm keeps the real response headers in
    `litellm_response_headers` (its `response` is a stand-in without them)."""
    for headers in (getattr(exc, "litellm_response_headers", None), getattr(exc, "headers", None),
                    getattr(getattr(exc, "response", None), "headers", None)):
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


# what a provider may quote back in an error body: a bearer token, an "api_key": "..." field, an sk-... key
_KEYLIKE = re.compile(
    r"(?i)(bearer\s+|(?:api[_-]?key|authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+"
    r"|\b(?:sk|pk|rk|key)-[A-Za-z0-9_*.\-]{6,}"
)


def redact(text: str, secret: str | None) -> str:
    """Provider error text with the key (and anything key-like) removed: it ends up in files and on screen."""
    if secret:
        text = text.replace(secret, "***")
        for part in (secret[:8], secret[-8:]):  # a provider that masks the middle still shows the ends
            if len(part) >= 8:
                text = text.replace(part, "***")
    return _KEYLIKE.sub(lambda m: (m.group(1) or "") + "***", text)


def _classify(exc: Exception, secret: str | None) -> CallError:
    litellm = _litellm()
    name = type(exc).__name__
    # redact the whole text before cutting it, so a key split by the cut cannot survive in part
    text = redact(str(exc), secret)
    msg = text.splitlines()[0][:300] if text.strip() else name
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return CallError("auth", f"authentication failed ({name}): {msg}")
    transient = (
        litellm.RateLimitError,
        litellm.Timeout,
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


async def acomplete(
    spec: ModelSpec, messages: list[dict[str, Any]], params: dict[str, Any], api_key: str | None
) -> Completion:
    """One call through litellm. Retries are the runner's job: num_retries=0 here."""
    litellm = _litellm()
    kwargs: dict[str, Any] = dict(params)
    kwargs.update(model=spec.call_model, messages=messages, num_retries=0, timeout=spec.timeout_s)
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
    except Exception as exc:  # noqa: BLE001 - classified, never swallowed
        raise _classify(exc, api_key) from None
    latency = time.perf_counter() - t0
    try:
        choice = resp.choices[0]
        text = choice.message.content or ""
        if not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}")
    except (AttributeError, IndexError, KeyError, TypeError) as exc:  # a 200 without an answer in it
        raise CallError("permanent", f"malformed response from {spec.name}: no choices[0].message.content "
                                     f"({type(exc).__name__})") from None
    usage = getattr(resp, "usage", None)
    pt = getattr(usage, "prompt_tokens", None)
    ct = getattr(usage, "completion_tokens", None)
    if pt is None:
        pt = count_tokens(spec, messages=messages)
    if ct is None:
        ct = count_tokens(spec, text=text)
    return Completion(
        model=spec.name,
        output=text,
        prompt_tokens=int(pt),
        completion_tokens=int(ct),
        cost_usd=spec.cost(int(pt), int(ct)),
        latency_s=latency,
        finish_reason=getattr(choice, "finish_reason", None),
        first_token_logprobs=first_token_logprobs(choice) if params.get("logprobs") else None,
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
    from equiv.local.server import active  # noqa: PLC0415

    bad = unsupported_params({k: v for k, v in kwargs.items()
                              if k not in ("model", "messages", "num_retries", "timeout", "api_key")})
    if bad:
        raise CallError("permanent", f"{spec.name}: {UNSUPPORTED_HINT} parameter(s) {', '.join(bad)}; "
                        f"remove them from the traffic's params or qualify a hosted model")
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
    except Exception:  # noqa: BLE001
        return False


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    out = {}
    for pkg in ("equiv", "litellm", "numpy", "scipy", "pydantic", "xllamacpp"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            if pkg != "xllamacpp":  # the local runtime is optional (equiv[local])
                out[pkg] = "unknown"
    return out
