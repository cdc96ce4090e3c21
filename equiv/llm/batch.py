"""--batch: calls through the provider's Batch API via litellm (SPEC "Spending less"), resumable.

The runner hands a call here instead of sending it. Calls gather per provider endpoint (provider, api_base,
key) until none has arrived for `quiet_s` (a wave of a run: every candidate answer, then every judge
verdict), then go out as one batch: the requests are written to a JSONL file uploaded with
`litellm.acreate_file(purpose="batch")`, the batch created with `litellm.acreate_batch`, polled with
`litellm.aretrieve_batch` and read with `litellm.afile_content`. Each answer resolves its call as a
real-time answer would (the same Completion, priced at the real-time price, billed at the batch share).

Nothing bought twice: before the upload, `batches.jsonl` in the run directory records the requests' cache
keys under their `custom_id`s; the file id and the batch id are recorded as soon as they exist. A killed run
re-reads it: a submitted batch is polled again and its answers collected, never re-bought; a call of a
batch that failed, expired or was cancelled fails as a transient error, so the runner's retry sends it in
a later batch. A run killed between asking for a batch and recording its id (the provider may have created
it) left an uploaded file and no batch id, as does a reply to the creation lost on the way (a timeout, a
502): the next run, or this one at once, looks the batch up in the provider's list
(`litellm.alist_batches`, by the `equiv_ref` metadata it was created with, or its input file) and polls it
if it exists; only a batch that was never created is sent again (and one the list cannot find, with a note).

Providers with a Batch API through litellm: openai (and OpenAI-compatible servers), azure, vertex_ai,
bedrock, hosted_vllm. Other models are called in real time (the run notes say so).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from equiv import durable
from equiv.llm.client import CallError, ModelSpec
from equiv.schema import Completion

BATCH_PROVIDERS = ("openai", "azure", "vertex_ai", "bedrock", "hosted_vllm")
FILE = "batches.jsonl"
FINAL = ("completed", "expired", "cancelled", "failed")
POLL_GIVE_UP_S = 26 * 3600.0  # a batch's 24 h window and some slack: then its calls fail (and are retried)
LIST_PAGES = 20  # pages of 100 of the provider's batch list searched for a batch created but not journaled
LIST_TRIES = 4  # attempts at listing before the batch is taken as never created


def provider_of(spec: ModelSpec) -> tuple[str, str]:
    """(provider, the model name the provider knows) of a model, as litellm routes it."""
    from equiv.llm.client import _litellm

    litellm = _litellm()
    try:
        model, provider, _key, _base = litellm.get_llm_provider(spec.call_model, api_base=spec.api_base)
    except Exception:
        return "", spec.call_model
    return str(provider), str(model)


def batch_price_share(spec: ModelSpec, settings: Any) -> float:
    """The share of the real-time price a batch call is billed at: litellm's batch price where the price is
    litellm's own (its `input_cost_per_token_batches`), else `batch_discount` of the configured price."""
    ms = settings.model_settings(spec.name)
    if ms.input_cost_per_mtok is None:
        from equiv.llm.client import _litellm

        cost_map = getattr(_litellm(), "model_cost", {}) or {}
        info = cost_map.get(spec.call_model) or cost_map.get(spec.call_model.split("/", 1)[-1]) or {}
        batch_in, real_in = info.get("input_cost_per_token_batches"), info.get("input_cost_per_token")
        if isinstance(batch_in, int | float) and isinstance(real_in, int | float) and real_in > 0:
            return float(batch_in) / float(real_in)
    return float(settings.batch_discount)


def batchable(spec: ModelSpec) -> bool:
    from equiv.local import is_local

    return not is_local(spec.name) and provider_of(spec)[0] in BATCH_PROVIDERS


@dataclass
class _Request:
    key: str
    spec: ModelSpec
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    future: asyncio.Future[Completion]
    redact: bool = False  # an answer to compare: the user's redaction runs on it before it is cached


@dataclass
class _Group:
    provider: str
    api_base: str | None
    api_key: str | None
    requests: list[_Request] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class BatchQueue:
    """Calls gathered into provider batches; see the module docstring."""

    def __init__(
        self,
        run_dir: Path,
        api_keys: dict[str, str | None],
        price_share: Callable[[ModelSpec], float],
        *,
        store: Callable[[str, Completion, bool], None] | None = None,
        quiet_s: float = 0.5,
        poll_s: float = 2.0,
        max_requests: int = 50_000,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.path = run_dir / FILE
        self.api_keys = api_keys
        # keeps an answer in the call cache (redacted when its flag says so) the moment it is read, before
        # the batch is marked collected: a kill right after never loses a paid answer (the runner sets it)
        self.store = store or (lambda key, completion, redact: None)
        self.price_share = price_share
        self.quiet_s, self.poll_s, self.max_requests = quiet_s, poll_s, max_requests
        self.on_event = on_event or (lambda kind, data: None)
        self._groups: dict[tuple[str, str | None, str | None], _Group] = {}
        self._waiting: dict[str, asyncio.Future[Completion]] = {}  # keys in a submitted batch not yet answered
        self._tasks: set[asyncio.Task[None]] = set()
        self._fh: Any = None
        self._resumed: list[dict[str, Any]] = self._read()
        self.submitted = 0  # batches this session
        self.adopted = 0  # batches an earlier session created without recording their id, found and polled
        # such batches the provider's list could not be read for: their requests were sent again (run notes)
        self.unknown: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ the journal (batches.jsonl)

    def _read(self) -> list[dict[str, Any]]:
        """Submitted batches not yet collected, from an earlier session."""
        if not self.path.is_file():
            return []
        batches: dict[str, dict[str, Any]] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            ref = rec.get("ref")
            if not isinstance(ref, str):
                continue
            entry = batches.setdefault(ref, {"ref": ref})
            entry.update({k: v for k, v in rec.items() if k != "event"})
            entry.setdefault("events", []).append(rec.get("event"))
        # submitted, or uploaded with its creation asked for but not journaled (a kill in that window)
        return [
            b for b in batches.values() if (b.get("batch_id") or b.get("file_id")) and "collected" not in b["events"]
        ]

    def _write(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        durable.mark(self._fh)

    def close(self) -> None:
        if self._fh is not None:
            durable.sync(self._fh)
            self._fh.close()
            self._fh = None

    # ------------------------------------------------------------------ the runner's side

    def resume(self, specs: dict[str, ModelSpec]) -> int:
        """Poll again the batches an earlier session submitted; their calls wait for them. Returns how many."""
        loop = asyncio.get_running_loop()
        n = 0
        for b in self._resumed:
            spec = specs.get(str(b.get("model_name")))
            if spec is None:
                continue
            raw = b.get("mapping") or {}
            mapping = {str(c): str(v["key"] if isinstance(v, dict) else v) for c, v in raw.items()}
            redacts = {str(c): bool(v.get("redact")) if isinstance(v, dict) else False for c, v in raw.items()}
            futures = {}
            for cid, key in mapping.items():
                fut = self._waiting.get(key) or loop.create_future()
                self._waiting[key] = fut
                futures[cid] = fut
            # the endpoint as configured now (the journal keeps no URL: one may carry a key)
            group = _Group(str(b.get("provider")), spec.api_base, self.api_keys.get(spec.name))
            bodies = b.get("bodies")
            if b.get("batch_id"):
                self._spawn(
                    self._poll(str(b["ref"]), str(b["batch_id"]), group, spec, mapping, futures, bodies, redacts)
                )
            else:
                self._spawn(
                    self._adopt(str(b["ref"]), str(b["file_id"]), group, spec, mapping, futures, bodies, redacts)
                )
            n += 1
        self._resumed = []
        return n

    async def complete(
        self,
        spec: ModelSpec,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        key: str,
        api_key: str | None,
        redact: bool = False,
    ) -> Completion:
        """The call's answer, from the batch it goes out in (or the earlier session's batch that holds it)."""
        waiting = self._waiting.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        loop = asyncio.get_running_loop()
        provider, _ = provider_of(spec)
        gkey = (provider, spec.api_base, spec.name)
        group = self._groups.get(gkey)
        if group is None:
            group = self._groups[gkey] = _Group(provider, spec.api_base, api_key)
        fut: asyncio.Future[Completion] = loop.create_future()
        group.requests.append(_Request(key, spec, messages, params, fut, redact))
        if group.timer is not None:
            group.timer.cancel()
        if len(group.requests) >= self.max_requests:
            self._flush(gkey)
        else:
            group.timer = loop.call_later(self.quiet_s, self._flush, gkey)
        return await fut

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _flush(self, gkey: tuple[str, str | None, str | None]) -> None:
        group = self._groups.get(gkey)
        if group is None or not group.requests:
            return
        reqs, group.requests, group.timer = group.requests, [], None
        self._spawn(self._submit(group, reqs))

    # ------------------------------------------------------------------ provider calls

    def _kwargs(self, group: _Group) -> dict[str, Any]:
        kw: dict[str, Any] = {"custom_llm_provider": group.provider}
        if group.api_base:
            kw["api_base"] = group.api_base
        if group.api_key:
            kw["api_key"] = group.api_key
        elif group.api_base:
            kw["api_key"] = "sk-no-key"  # local OpenAI-compatible servers need some key
        return kw

    async def _submit(self, group: _Group, reqs: list[_Request]) -> None:
        from equiv.llm.client import _classify, _litellm

        litellm = _litellm()
        spec = reqs[0].spec
        _, model = provider_of(spec)
        ref = hashlib.sha256(("|".join(r.key for r in reqs) + str(time.time())).encode()).hexdigest()[:16]
        mapping, bodies, lines, futures, redacts = {}, {}, [], {}, {}
        for i, r in enumerate(reqs):
            cid = f"equiv-{ref}-{i}"
            mapping[cid] = r.key
            redacts[cid] = r.redact
            body = {"model": model, "messages": r.messages, **r.params}
            bodies[cid] = {"messages": r.messages, "params": r.params}
            lines.append(json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body}))
            futures[cid] = r.future
            self._waiting[r.key] = r.future
        # before anything is sent: which cache key each custom_id answers (a killed run re-polls, never re-buys)
        try:
            self._write(
                {
                    "event": "prepared",
                    "ref": ref,
                    "provider": group.provider,
                    "model_name": spec.name,
                    "mapping": {cid: {"key": mapping[cid], "redact": redacts[cid]} for cid in mapping},
                    "bodies": bodies,
                }
            )
        except Exception as exc:  # the journal cannot be written (disk full ...): nothing is sent
            self._fail(futures, mapping, CallError("permanent", f"cannot write {self.path}: {exc}"))
            return
        kw = self._kwargs(group)
        fobj: Any = None
        uploaded = False  # the upload is journaled: a batch may exist from here on
        try:
            payload = ("\n".join(lines) + "\n").encode("utf-8")
            fobj = await litellm.acreate_file(file=(f"{ref}.jsonl", io.BytesIO(payload)), purpose="batch", **kw)
            self._write({"event": "uploaded", "ref": ref, "file_id": fobj.id})
            uploaded = True
            batch = await litellm.acreate_batch(
                completion_window="24h",
                endpoint="/v1/chat/completions",
                input_file_id=fobj.id,
                metadata={"equiv_ref": ref},
                **kw,
            )
            self._write({"event": "submitted", "ref": ref, "batch_id": batch.id})
        except Exception as exc:  # the batch never went out: each call fails as the provider said (retried)
            err = exc if isinstance(exc, CallError) else _classify(exc, group.api_key)
            if fobj is not None and uploaded and err.kind == "transient":
                # the provider may have created the batch and its reply been lost (a timeout, a 502, a reset):
                # look it up as a killed run's next run would, so that it is polled rather than bought again
                await self._adopt(ref, str(fobj.id), group, spec, mapping, futures, bodies, redacts)
                return
            self._fail(futures, mapping, CallError(err.kind, f"batch not submitted: {err.message}"))
            try:
                self._write({"event": "collected", "ref": ref, "status": "not submitted", "error": err.message})
            except Exception:
                pass
            return
        self.submitted += 1
        self.on_event("batch", {"id": batch.id, "requests": len(reqs), "model": spec.name})
        await self._poll(ref, batch.id, group, spec, mapping, futures, bodies, redacts)

    async def _adopt(
        self,
        ref: str,
        file_id: str,
        group: _Group,
        spec: ModelSpec,
        mapping: dict[str, str],
        futures: dict[str, asyncio.Future[Completion]],
        bodies: dict[str, Any] | None,
        redacts: dict[str, bool] | None,
    ) -> None:
        """A batch an earlier session asked the provider to create without living to record its id: found in
        the provider's list, it is journaled and polled like any submitted batch; not found, it was never
        created, and its calls go out again (as a batch that never ran)."""
        found: str | None = None
        error: str | None = None
        for attempt in range(LIST_TRIES):
            try:
                found, error = await self._find(ref, file_id, group), None
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # listing is free: try again a few times before deciding
                from equiv.llm.client import _classify

                err = exc if isinstance(exc, CallError) else _classify(exc, group.api_key)
                error = err.message
                if err.kind != "transient" or attempt == LIST_TRIES - 1:
                    break
                await asyncio.sleep(self.poll_s * 2**attempt)
        if found is not None:
            try:
                self._write({"event": "submitted", "ref": ref, "batch_id": found, "adopted": True})
            except Exception:  # the journal cannot be written: the batch is still polled (its answers are cached)
                pass
            self.adopted += 1
            self.on_event("batch_adopted", {"id": found, "requests": len(mapping), "model": spec.name})
            await self._poll(ref, found, group, spec, mapping, futures, bodies, redacts)
            return
        status = "never created" if error is None else "unknown (the provider's batch list failed)"
        try:
            self._write({"event": "collected", "ref": ref, "file_id": file_id, "status": status, "error": error})
        except Exception:  # its calls still go out again (a later session would search for the batch again)
            pass
        if error is not None:  # it may exist and be billed: the user hears of it
            unknown = {"ref": ref, "file_id": file_id, "error": error, "requests": len(mapping)}
            self.unknown.append(unknown)
            self.on_event("batch_unknown", unknown)
        self._fail(
            futures,
            mapping,
            CallError("transient", f"batch for file {file_id} was {status}: sending its requests again", resend=True),
        )

    async def _find(self, ref: str, file_id: str, group: _Group) -> str | None:
        """The id of the provider's batch created for `ref` (its metadata) or from `file_id`, newest first;
        None when the whole list was read without it. A list too long to read to its end is an error (the
        batch may be further down): taken as unknown, not as never created."""
        from equiv.llm.client import _litellm

        litellm = _litellm()
        after: str | None = None
        pages: set[str] = set()  # the last id of each page read: a provider that ignores `after` repeats one
        for _ in range(LIST_PAGES):
            page = await litellm.alist_batches(after=after, limit=100, **self._kwargs(group))
            data = list(getattr(page, "data", None) or [])
            if data and str(data[-1].id) in pages:
                raise CallError("permanent", "the provider's batch list cannot be paged past its first page")
            if data:
                pages.add(str(data[-1].id))
            for b in data:
                meta = getattr(b, "metadata", None) or {}
                if (isinstance(meta, dict) and meta.get("equiv_ref") == ref) or getattr(
                    b, "input_file_id", None
                ) == file_id:
                    return str(b.id)
            if not data or not getattr(page, "has_more", False):
                return None
            after = str(data[-1].id)
        raise CallError("permanent", f"not among the provider's newest {LIST_PAGES * 100} batches")

    def _fail(self, futures: dict[str, asyncio.Future[Completion]], mapping: dict[str, str], err: CallError) -> None:
        for cid, fut in futures.items():
            self._waiting.pop(mapping[cid], None)
            if not fut.done():
                fut.set_exception(err)

    async def _poll(
        self,
        ref: str,
        batch_id: str,
        group: _Group,
        spec: ModelSpec,
        mapping: dict[str, str],
        futures: dict[str, asyncio.Future[Completion]],
        bodies: dict[str, Any] | None,
        redacts: dict[str, bool] | None = None,
    ) -> None:
        """Wait for the batch to end and resolve its calls. Polling and downloads are free, so a failed poll
        or download is retried (with backoff, for up to POLL_GIVE_UP_S) rather than failing the calls, which
        would buy them again while the batch still runs. Every answer is stored before the batch is marked
        collected."""
        from equiv.llm.client import _classify, _litellm

        litellm = _litellm()
        kw = self._kwargs(group)
        share = self.price_share(spec)
        answered: set[str] = set()
        status = "unknown"
        started = time.monotonic()

        async def patient(call: Callable[[], Any]) -> Any:
            wait = self.poll_s
            while True:
                try:
                    return await call()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    err = exc if isinstance(exc, CallError) else _classify(exc, group.api_key)
                    if err.kind == "auth" or time.monotonic() - started > POLL_GIVE_UP_S:
                        raise err from None
                    self.on_event("batch_poll_retry", {"id": batch_id, "error": err.message})
                    await asyncio.sleep(wait)
                    wait = min(60.0, wait * 2)

        try:
            while True:
                b = await patient(lambda: litellm.aretrieve_batch(batch_id=batch_id, **kw))
                status = str(getattr(b, "status", "") or "")
                if status in FINAL:
                    break
                if time.monotonic() - started > POLL_GIVE_UP_S:
                    raise CallError(
                        "transient", f"batch {batch_id} still {status or 'unknown'} after {POLL_GIVE_UP_S:g} s"
                    )
                await asyncio.sleep(self.poll_s)
            for file_id, ok in ((getattr(b, "output_file_id", None), True), (getattr(b, "error_file_id", None), False)):
                if not file_id:
                    continue
                content = await patient(partial(litellm.afile_content, file_id=file_id, **kw))
                raw = content.content if hasattr(content, "content") else bytes(content)
                for line in raw.decode("utf-8", errors="replace").splitlines():
                    self._resolve_row(line, ok, batch_id, spec, share, futures, mapping, bodies, redacts, answered)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the batch's fate is unknown: its calls stay recorded for the next run to poll
            failure = exc if isinstance(exc, CallError) else _classify(exc, group.api_key)
            self._fail(futures, mapping, CallError("transient", f"batch {batch_id}: {failure.message}"))
            return
        for cid, fut in futures.items():
            self._waiting.pop(mapping[cid], None)
            if not fut.done():  # expired or cancelled before this request was answered: a later batch sends it
                fut.set_exception(
                    CallError("transient", f"batch {batch_id} {status} before this request was answered", resend=True)
                )
        done = {"event": "collected", "ref": ref, "batch_id": batch_id, "status": status, "answered": len(answered)}
        self._write(done)
        self.on_event("batch_done", {"id": batch_id, "status": status, "answered": len(answered)})

    def _resolve_row(
        self,
        line: str,
        ok: bool,
        batch_id: str,
        spec: ModelSpec,
        share: float,
        futures: dict[str, asyncio.Future[Completion]],
        mapping: dict[str, str],
        bodies: dict[str, Any] | None,
        redacts: dict[str, bool] | None,
        answered: set[str],
    ) -> None:
        """One line of an output or error file: its call answered (stored first), or failed."""
        from equiv.llm.client import _litellm, completion_from

        try:
            row = json.loads(line)
        except ValueError:
            return
        cid = row.get("custom_id") if isinstance(row, dict) else None
        fut = futures.get(cid) if isinstance(cid, str) else None
        if fut is None or fut.done() or not isinstance(cid, str):
            return
        answered.add(cid)
        response = row.get("response") or {}
        code = response.get("status_code") if isinstance(response, dict) else None
        if ok and code == 200 and isinstance(response.get("body"), dict):
            body = bodies.get(cid, {}) if bodies else {}
            try:
                resp = _litellm().ModelResponse(**response["body"])
                comp = completion_from(spec, resp, body.get("messages") or [], body.get("params") or {})
            except CallError as bad:
                fut.set_exception(bad)
                return
            except Exception as bad:  # a line litellm cannot read: that call fails (and is retried), not the batch
                fut.set_exception(CallError("transient", f"batch {batch_id}: unreadable answer ({type(bad).__name__})"))
                return
            comp = comp.model_copy(update={"batch_id": batch_id, "batch_price_share": share})
            self.store(mapping[cid], comp, bool((redacts or {}).get(cid)))
            fut.set_result(comp)
        else:
            err_info = (
                row.get("error")
                or ((response.get("body") or {}) if isinstance(response, dict) else {}).get("error")
                or {}
            )
            message = str(err_info.get("message") if isinstance(err_info, dict) else err_info) or f"status {code}"
            never_ran = code is None  # expired / cancelled before it ran: sent again, not a failure
            status_code = int(code) if isinstance(code, int | str) and str(code).isdigit() else 0
            kind = "transient" if never_ran or status_code == 429 or status_code >= 500 else "permanent"
            fut.set_exception(CallError(kind, f"batch {batch_id}: {message}"[:300], resend=never_ran))

    async def aclose(self) -> None:
        for g in self._groups.values():
            if g.timer is not None:
                g.timer.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.close()
