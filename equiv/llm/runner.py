"""Concurrency, retries with backoff + jitter, the spend cap, fail-fast on auth. Calls go via client.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from equiv.errors import AbortedError, AuthError, InputError, SpendCapReached
from equiv.llm import client, secrets
from equiv.llm.cache import CallCache, call_key
from equiv.llm.client import CallError, ModelSpec
from equiv.schema import Completion

Event = Callable[[str, dict[str, Any]], None]
RESENDS = 20  # --batch: how often a request a batch ended without running is sent again (not a failure)


@dataclass(frozen=True)
class Tuning:
    """How hard the runner pushes a failing provider. Defaults suit real providers; tests shrink them.

    Read from the environment (`EQUIV_BACKOFF_BASE_S` ...) so that CI and benchmarks can make a run with
    thousands of injected faults fast without a config key per knob.
    """

    backoff_base_s: float = 0.5  # first retry waits up to this (full jitter), doubling per attempt
    backoff_max_s: float = 30.0  # no single wait is longer (a retry-after header is capped here too)
    breaker_window_s: float = 60.0  # the failure-rate breaker looks at the calls of this last window...
    breaker_failure_rate: float = 0.5  # ...and stops the run when more than this share of them failed
    breaker_min_calls: int = 20  # ...over at least this many calls, after failing for a whole window

    ENV = {
        "backoff_base_s": "EQUIV_BACKOFF_BASE_S",
        "backoff_max_s": "EQUIV_BACKOFF_MAX_S",
        "breaker_window_s": "EQUIV_BREAKER_WINDOW_S",
        "breaker_failure_rate": "EQUIV_BREAKER_FAILURE_RATE",
        "breaker_min_calls": "EQUIV_BREAKER_MIN_CALLS",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tuning:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = cls.ENV[f.name]
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            try:
                value = int(raw) if f.type in ("int", int) else float(raw)
            except ValueError:
                raise InputError(f"environment variable {var}={raw!r}: not a number") from None
            if value < 0 or (f.name == "breaker_failure_rate" and value > 1):
                raise InputError(f"environment variable {var}={raw!r}: out of range")
            values[f.name] = value
        return cls(**values)


@dataclass
class RunnerStats:
    calls: int = 0  # calls bought in this process
    cache_hits: int = 0
    retries: int = 0
    backoff_s: float = 0.0
    max_attempts: int = 0  # the most attempts any one call needed
    errors: Counter[str] = field(default_factory=Counter)  # by kind: transient / permanent / auth
    faults: Counter[str] = field(default_factory=Counter)  # transient errors by exception class
    over_reservation: int = 0  # calls that cost more than reserved (a provider that ignored the output limit)
    unanswered_usd: float = 0.0  # reservations of calls sent but never answered (timeouts): counted as spent


class Runner:
    """Makes model calls for a run: at most `concurrency` at once, never past the spend cap.

    Spend is reserved before a call is sent, at the call's worst case (an upper bound of its prompt
    tokens, plus its output limit times `n`), and a call that sets no output limit is sent with the one
    it was reserved at (`default_max_tokens`): concurrent calls together never pass the cap. A call sent
    but never answered (a timeout) may still be billed: its reservation is counted as spent. A provider
    that ignores the limit can overrun one call's reservation; no call is started after the cap is passed.
    """

    def __init__(
        self,
        *,
        cache: CallCache,
        concurrency: int,
        max_retries: int,
        max_spend_usd: float,
        api_keys: dict[str, str | None],
        default_max_tokens: int = 1024,
        on_event: Event | None = None,
        seed: int = 0,
        backoff_base_s: float | None = None,
        backoff_max_s: float | None = None,
        breaker_threshold: int | None = None,
        tuning: Tuning | None = None,
        redact: Callable[[str], str] | None = None,
        redact_id: str | None = None,
        batch: Any = None,
    ) -> None:
        tuning = tuning or Tuning.from_env()
        # --batch: an equiv.llm.batch.BatchQueue; calls to models with a Batch API go through it
        self.batch = batch
        self._batchable: dict[str, bool] = {}
        # the user's redaction (equiv.toml `redact`), applied to the answers of calls made with redact=True
        # (baseline and candidate answers) before they are cached, judged or written
        self.redact = redact
        self.redact_id = redact_id or ("rule" if redact is not None else None)
        self.cache = cache
        self.sem = asyncio.Semaphore(concurrency)
        self.max_retries = max_retries
        self.cap = max_spend_usd
        self.spent = cache.total_cost()  # a resumed run already spent this
        self.reserved = 0.0
        self._open = 0  # reservations held by calls in flight (reserved drifts in floating point)
        self.api_keys = api_keys
        secrets.remember(*api_keys.values())  # redacted by value from every error text and answer
        secrets.refresh_environment()  # keys set just before this run are known from its first call
        self.default_max_tokens = default_max_tokens
        self.on_event = on_event or (lambda kind, data: None)
        self.rng = random.Random(seed)
        self.backoff_base_s = tuning.backoff_base_s if backoff_base_s is None else backoff_base_s
        self.backoff_max_s = tuning.backoff_max_s if backoff_max_s is None else backoff_max_s
        self.tuning = tuning
        # two breakers: N failed attempts in a row, or most attempts failing for a whole window
        self.breaker_threshold = breaker_threshold or max(25, 3 * concurrency)
        self.consecutive_failures = 0
        self._outcomes: deque[tuple[float, bool]] = deque()  # (monotonic time, failed) of recent attempts
        self._window_failures = 0
        self._started_t: float | None = None  # first attempt's outcome
        self.aborted: AbortedError | None = None
        self.stats = RunnerStats()
        self._inflight: dict[str, asyncio.Future[Completion]] = {}
        self._budget = asyncio.Condition()
        self._orphans: set[asyncio.Future[Completion]] = set()  # calls sent whose caller was cancelled

    def _rule(self) -> Callable[[Completion], Completion] | None:
        if self.redact is None:
            return None
        fn, rid = self.redact, self.redact_id

        def apply(result: Completion) -> Completion:
            return _redacted(result, fn).model_copy(update={"redacted": rid})

        return apply

    def _abort(self, err: AbortedError) -> AbortedError:
        if self.aborted is None:
            self.aborted = err
            self.on_event("aborted", {"reason": err.message})
        return self.aborted

    def _record(self, failed: bool) -> tuple[int, int] | None:
        """Note one attempt's outcome; (failures, attempts) of the window when the rate breaker trips.

        It trips when more than `breaker_failure_rate` of the attempts of the last `breaker_window_s`
        failed, once calls have been made for a whole window (a short burst of errors at the start, or a
        few failures among few calls, never stops a run: the consecutive-failure breaker covers those).
        """
        now = time.monotonic()
        t = self.tuning
        if self._started_t is None:
            self._started_t = now
        self._outcomes.append((now, failed))
        self._window_failures += failed
        while self._outcomes and self._outcomes[0][0] < now - t.breaker_window_s:
            self._window_failures -= self._outcomes.popleft()[1]
        n = len(self._outcomes)
        if (
            failed
            and n >= t.breaker_min_calls
            and now - self._started_t >= t.breaker_window_s
            and self._window_failures > t.breaker_failure_rate * n
        ):
            return self._window_failures, n
        return None

    def _adopt(
        self, key: str, sent: asyncio.Future[Completion], redact: Callable[[Completion], Completion] | None = None
    ) -> None:
        """A call cancelled (abort, Ctrl-C) after it was sent is still paid for: cache its answer when it
        arrives, so the resumed run does not buy it again. `settle()` waits for these."""
        if sent.done():
            self._keep(key, sent, redact)
            return
        self._orphans.add(sent)
        sent.add_done_callback(lambda f: self._keep(key, f, redact))

    def _keep(
        self, key: str, sent: asyncio.Future[Completion], redact: Callable[[Completion], Completion] | None = None
    ) -> None:
        self._orphans.discard(sent)
        if sent.cancelled() or sent.exception() is not None:
            return
        result = sent.result()
        if self.cache.get(key) is None:
            self.spent += result.billed_usd
            self.stats.calls += 1
            try:
                clean = _scrubbed(result, redact)
            except InputError:  # the user's redaction failed: never cache the answer unredacted (the run stops)
                return
            self.cache.put(key, clean)

    def _use_batch(self, spec: ModelSpec) -> bool:
        if self.batch is None:
            return False
        if spec.name not in self._batchable:
            from equiv.llm.batch import batchable

            self._batchable[spec.name] = batchable(spec)
        return self._batchable[spec.name]

    def resume_batches(self, specs: dict[str, ModelSpec]) -> int:
        """--batch: poll again the batches a killed session submitted; every answer they bring is stored."""
        if self.batch is None:
            return 0
        return int(self.batch.resume(specs))

    def store_batch_answer(self, key: str, completion: Completion, redact: bool) -> None:
        """--batch: an answer read from a batch's output file, kept at once (scrubbed of keys, and redacted when
        it is an answer to compare), counted as spent once, whether or not a caller is waiting for it."""
        if self.cache.get(key) is not None:
            return
        rule = self._rule() if redact else None
        try:
            clean = _scrubbed(completion, rule)
        except InputError:  # the user's redaction failed: never cache the answer unredacted
            return
        self.spent += completion.billed_usd
        self.stats.calls += 1
        self.cache.put(key, clean)

    async def settle(self, timeout_s: float) -> int:
        """Wait (at most `timeout_s`) for calls sent before an abort; their answers are cached. Returns how
        many were still outstanding when the wait ended (they are abandoned)."""
        if self._orphans:
            await asyncio.wait(set(self._orphans), timeout=timeout_s)
        left = len(self._orphans)
        for f in list(self._orphans):
            f.cancel()
        return left

    def _cap_reached(self, worst: float) -> AbortedError:
        maybe = (
            (f" (${self.stats.unanswered_usd:.4f} of it reserved by calls that timed out and may have been billed)")
            if self.stats.unanswered_usd
            else ""
        )
        return self._abort(
            SpendCapReached(
                f"spend cap reached: ${self.spent:.4f} spent{maybe}; the next call could cost up to "
                f"${worst:.4f} and max_spend_usd is ${self.cap:.2f}. Partial results are kept: "
                "raise --max-spend and run the same command again to resume."
            )
        )

    def _worst_case(self, spec: ModelSpec, messages: list[dict[str, Any]], params: dict[str, Any]) -> float:
        """The most the call can be billed: a true upper bound of its prompt tokens (UTF-8 bytes, schemas
        included) and its output limit (the one it is sent with) times `n`."""
        return spec.cost(
            client.prompt_token_bound(messages, params), client.output_token_bound(params, self.default_max_tokens)
        )

    async def call(
        self,
        spec: ModelSpec,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        sample: int = 0,
        *,
        redact: bool = False,
    ) -> Completion:
        """One call, bought at most once. ``redact=True`` (an answer to compare, not a judge's reply): the
        user's redaction runs on the answer, also on one read from the cache (an earlier run may not
        have redacted)."""
        fn = self._rule() if redact else None
        result = await self._call(spec, messages, params, sample, fn)
        if fn is None or result.redacted == self.redact_id:  # bought here (redacted before caching), or cached so
            return result
        return fn(result)  # an earlier run's answer, under no rule or another one

    async def _call(
        self,
        spec: ModelSpec,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        sample: int,
        redact: Callable[[Completion], Completion] | None,
    ) -> Completion:
        # the params as sent: with the output limit the call is reserved at, which is part of what defines it
        params = client.with_output_limit(params, self.default_max_tokens)
        key = call_key(spec.call_model, spec.api_base, messages, params, sample)
        hit = self.cache.get(key)
        if hit is not None:
            self.stats.cache_hits += 1
            return _as_called(hit, spec)
        pending = self._inflight.get(key)
        if pending is not None:  # the identical call is already under way: share it, never buy it twice
            self.stats.cache_hits += 1
            return _as_called(await asyncio.shield(pending), spec)
        fut: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await self._buy(key, spec, messages, params, redact)
        except BaseException as exc:
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: no "never retrieved" warning when nobody shares it
            raise
        else:
            fut.set_result(result)
            return result
        finally:
            del self._inflight[key]

    async def _buy(
        self,
        key: str,
        spec: ModelSpec,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        redact: Callable[[Completion], Completion] | None = None,
    ) -> Completion:
        attempt = resends = 0
        while True:
            if self.aborted is not None:
                raise self.aborted
            worst = self._worst_case(spec, messages, params)
            async with self._budget:
                # wait while in-flight calls hold the budget: they usually cost far less than reserved
                await self._budget.wait_for(
                    lambda: (
                        self.aborted is not None or self.spent + self.reserved + worst <= self.cap or self._open == 0  # noqa: B023 - evaluated at once
                    )
                )
                if self.aborted is not None:
                    raise self.aborted
                if self.spent + worst > self.cap:
                    self._budget.notify_all()  # wake the waiters: they stop too
                    raise self._cap_reached(worst)
                self.reserved += worst
                self._open += 1
            result: Completion | None = None
            delay: float | None = None
            unanswered = 0.0  # a call sent and never answered (timeout): maybe billed, so its reservation stays spent
            use_batch = self._use_batch(spec)
            try:
                async with contextlib.nullcontext() if use_batch else self.sem:  # a batch holds many calls
                    if self.aborted is not None:
                        raise self.aborted
                    if self.spent + self.reserved > self.cap * (1 + 1e-9) + 1e-12:
                        # a call answered meanwhile cost more than its reservation (the provider ignored the
                        # limit): the calls admitted before that are not sent past the cap
                        raise self._cap_reached(worst)
                    api_key = self.api_keys.get(spec.name)
                    sent = asyncio.ensure_future(
                        self.batch.complete(spec, messages, params, key, api_key, redact is not None)
                        if use_batch
                        else client.acomplete(spec, messages, params, api_key)
                    )
                    try:
                        result = await asyncio.shield(sent)
                    except asyncio.CancelledError:
                        self._adopt(key, sent, redact)  # the request is out: keep its answer when it comes
                        raise
            except CallError as err:
                self.stats.errors[err.kind] += 1
                if err.maybe_billed:
                    unanswered = worst
                if err.kind == "auth":
                    where = client.environment_key_hint(spec)
                    raise self._abort(
                        AuthError(
                            f"{spec.name}: {err.message}. Check the API key"
                            + (f" in {where}" if where else "")
                            + "; no further calls were made."
                        )
                    ) from None
                if err.kind != "transient":
                    raise
                if err.resend and resends < RESENDS:  # --batch: it never ran; into the next batch
                    resends += 1
                    self.stats.retries += 1
                    continue
                self.stats.faults[err.message.split(":", 1)[0]] += 1
                self.consecutive_failures += 1
                if self.consecutive_failures >= self.breaker_threshold:
                    raise self._abort(
                        AbortedError(
                            f"{spec.name}: the provider keeps failing ({self.consecutive_failures} failed attempts "
                            f"in a row, last: {err.message}). Partial results are kept: run the same command "
                            "again later to resume."
                        )
                    ) from None
                tripped = self._record(failed=True)
                if tripped is not None:
                    failures, n = tripped
                    raise self._abort(
                        AbortedError(
                            f"{spec.name}: the provider keeps failing ({failures} of the last {n} attempts failed "
                            f"in {self.tuning.breaker_window_s:g} s, last: {err.message}). Partial results are "
                            "kept: run the same command again later to resume."
                        )
                    ) from None
                if attempt >= self.max_retries:
                    raise
                delay = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
                delay = self.rng.uniform(0, delay)  # full jitter
                if err.retry_after is not None:
                    delay = max(delay, min(err.retry_after, self.backoff_max_s))
                attempt += 1
                self.stats.retries += 1
                self.stats.backoff_s += delay
                self.on_event("retry", {"model": spec.name, "error": err.message, "delay": delay, "attempt": attempt})
            finally:
                async with self._budget:
                    self.reserved -= worst
                    self._open -= 1
                    if self._open == 0:
                        self.reserved = 0.0
                    if result is not None and not use_batch:  # a batch's answers are counted when stored
                        self.spent += result.billed_usd
                    elif unanswered:
                        self.spent += unanswered
                        self.stats.unanswered_usd += unanswered
                    self._budget.notify_all()
            if delay is not None:  # back off holding no budget and no concurrency slot
                await asyncio.sleep(delay)
                continue
            assert result is not None  # the except branch either raised or set a delay
            if result.cost_usd > worst * (1 + 1e-9):  # the provider billed past the limit it was sent
                self.stats.over_reservation += 1
                self.on_event("over_reservation", {"model": spec.name, "cost": result.cost_usd, "reserved": worst})
            self.consecutive_failures = 0
            self._record(failed=False)
            self.stats.max_attempts = max(self.stats.max_attempts, attempt + 1)
            if use_batch:  # the batch stored it (scrubbed, redacted) the moment it was read
                kept = self.cache.get(key)
                if kept is not None:
                    return kept
                result = _scrubbed(result, redact)
            else:
                result = _scrubbed(result, redact)
                self.stats.calls += 1
                self.cache.put(key, result)
            self.on_event("call", {"model": spec.name, "cost": result.billed_usd})
            return result


def _scrubbed(result: Completion, redact: Callable[[Completion], Completion] | None = None) -> Completion:
    """An answer that quotes a key the call could use (whole, in any quoted form: in its text, its tool
    calls' arguments, ...) gets it masked before it is cached, judged or written; so does what the
    user's redaction rule matches, when given."""
    if redact is not None:
        result = redact(result)
    found = secrets.known_secrets()
    if not found:
        return result
    dumped = result.model_dump()
    clean = _scrub_tree(dumped, found)
    return result if clean == dumped else Completion.model_validate(clean)


def _redacted(result: Completion, redact: Callable[[str], str]) -> Completion:
    """The answer's text and tool calls through the user's redaction (model name, tokens, logprobs kept)."""
    output = redact(result.output)
    calls = [_call_args(c, redact) for c in result.tool_calls] if result.tool_calls else result.tool_calls
    if output == result.output and calls == result.tool_calls:
        return result
    return result.model_copy(update={"output": output, "tool_calls": calls})


def _call_args(call: dict[str, Any], redact: Callable[[str], str]) -> dict[str, Any]:
    """A tool call with its arguments redacted; its id, type and name kept (a later tool message links to it)."""
    fn = call.get("function")
    if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
        return {**call, "function": {**fn, "arguments": redact(fn["arguments"])}}
    return call


def _scrub_tree(value: Any, found: frozenset[str]) -> Any:
    if isinstance(value, str):
        return secrets.redact_values(value, found, ends=False)
    if isinstance(value, dict):
        return {k: _scrub_tree(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_tree(v, found) for v in value]
    return value


def _as_called(done: Completion, spec: ModelSpec) -> Completion:
    """A finished call reused under this spec: named and priced as this run's config says now (a
    corrected price re-prices the pairs, it does not re-buy them)."""
    cost = spec.cost(done.prompt_tokens, done.completion_tokens)
    if done.model == spec.name and done.cost_usd == cost:
        return done
    return done.model_copy(update={"model": spec.name, "cost_usd": cost})
