"""--batch: a journaled batch whose id the killed session never learned (SPEC "Spending less": a killed run
re-polls, never re-buys). Found in the provider's list it is polled (tests/integration/test_batch.py); here,
a batch that was never created, and a list that cannot be read: the calls go out again, the second with a note."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from equiv.llm.batch import FILE, BatchQueue
from equiv.llm.client import CallError, ModelSpec
from equiv.testing.loopback import LoopbackServer

MESSAGES = [{"role": "user", "content": "hello"}]


def _spec(api_base: str) -> ModelSpec:
    return ModelSpec("openai/skill-95", "openai/skill-95", api_base, None, 1e-6, 1e-6, 10.0)


def _journal(run: Path, file_id: str) -> None:
    """What a session killed inside acreate_batch leaves: the requests and the uploaded file, no batch id."""
    mapping = {"equiv-r1-0": {"key": "k1", "redact": False}}
    bodies = {"equiv-r1-0": {"messages": MESSAGES, "params": {"max_tokens": 16}}}
    lines = [
        {"event": "prepared", "ref": "r1", "provider": "openai", "model_name": "openai/skill-95", "mapping": mapping}
        | {"bodies": bodies},
        {"event": "uploaded", "ref": "r1", "file_id": file_id},
    ]
    (run / FILE).write_text("".join(json.dumps(x) + "\n" for x in lines))


def _resume(
    run: Path, spec: ModelSpec
) -> tuple[int, BaseException | None, list[tuple[str, dict[str, Any]]], BatchQueue]:
    events: list[tuple[str, dict[str, Any]]] = []
    queue = BatchQueue(
        run, {spec.name: "sk-test"}, lambda s: 0.5, poll_s=0.01, on_event=lambda k, d: events.append((k, d))
    )

    async def go() -> tuple[int, BaseException | None]:
        n = queue.resume({spec.name: spec})
        try:
            await queue.complete(spec, MESSAGES, {"max_tokens": 16}, "k1", "sk-test")
        except CallError as err:
            return n, err
        finally:
            await queue.aclose()
        return n, None

    n, err = asyncio.run(go())
    return n, err, events, queue


def test_a_batch_never_created_sends_its_calls_again(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        _journal(tmp_path, "file-never-batched")
        n, err, events, queue = _resume(tmp_path, _spec(srv.base_url))
        assert srv.batches == {}  # looking is free: nothing was created
    assert queue.unknown == [] and queue.adopted == 0
    assert n == 1
    assert isinstance(err, CallError) and err.resend and err.kind == "transient"  # the runner sends it again
    last = json.loads((tmp_path / FILE).read_text().splitlines()[-1])
    assert last["event"] == "collected" and last["status"] == "never created" and last["error"] is None
    assert not [k for k, _ in events if k == "batch_unknown"]


def test_a_batch_list_that_cannot_be_read_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import equiv.llm.batch as batch

    monkeypatch.setattr(batch, "LIST_TRIES", 2)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _journal(tmp_path, "file-x")
    n, err, events, queue = _resume(tmp_path, _spec(f"http://127.0.0.1:{port}/v1"))
    assert queue.unknown == [unknown for k, unknown in events if k == "batch_unknown"]
    assert n == 1 and isinstance(err, CallError) and err.resend
    last = json.loads((tmp_path / FILE).read_text().splitlines()[-1])
    assert last["event"] == "collected" and last["status"].startswith("unknown") and last["error"]
    unknown = [d for k, d in events if k == "batch_unknown"]
    assert len(unknown) == 1 and unknown[0]["file_id"] == "file-x" and unknown[0]["requests"] == 1
    assert "sk-test" not in (tmp_path / FILE).read_text()  # the key never reaches the journal


def test_a_lost_reply_to_the_batch_creation_adopts_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider created the batch, its reply was lost (a read timeout): the batch is found and polled, not
    bought again by the retry."""
    import litellm

    real = litellm.acreate_batch
    created: list[str] = []

    async def lossy(**kw: Any) -> Any:
        batch = await real(**kw)
        created.append(batch.id)
        if len(created) == 1:
            raise litellm.Timeout(message="read timed out", model="skill-95", llm_provider="openai")
        return batch

    monkeypatch.setattr(litellm, "acreate_batch", lossy)
    with LoopbackServer(batch_delay_s=0.2) as srv:
        spec = _spec(srv.base_url)
        queue = BatchQueue(tmp_path, {spec.name: "sk-test"}, lambda s: 0.5, poll_s=0.01, quiet_s=0.01)

        async def go() -> Any:
            try:
                return await queue.complete(spec, MESSAGES, {"max_tokens": 16}, "k1", "sk-test")
            finally:
                await queue.aclose()

        answer = asyncio.run(go())
        counts = srv.counts_by_key()
        assert len(srv.batches) == 1 and created == list(srv.batches)
    assert answer.output and answer.batch_id == created[0]
    assert max(counts.values()) == 1 and queue.adopted == 1
    events = [json.loads(line)["event"] for line in (tmp_path / FILE).read_text().splitlines()]
    assert events == ["prepared", "uploaded", "submitted", "collected"]
