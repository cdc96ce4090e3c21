"""The loopback server's OpenAI Files and Batch APIs, driven through litellm's own batch helpers.

The calls below are the ones litellm 1.106.2 was observed to accept (``custom_llm_provider="openai"`` with
``api_base`` / ``api_key``); equiv's ``--batch`` client is written against the same calls.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm
import openai

from equiv.testing import LoopbackServer, messages_hash

litellm.suppress_debug_info = True
litellm.disable_hf_tokenizer_download = True

KEY = "sk-test"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def kw(srv: LoopbackServer, key: str = KEY) -> dict[str, Any]:
    return {"custom_llm_provider": "openai", "api_base": srv.base_url, "api_key": key, "timeout": 10}


def body(i: int, model: str = "skill-80", **extra: Any) -> dict[str, Any]:
    content = f"Tell me about apples, pears and plums in orchard number {i}, and how they ripen."
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def line(custom_id: str, b: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": b}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def parse(raw: bytes) -> dict[str, dict[str, Any]]:
    """custom_id -> output/error line."""
    out = [json.loads(x) for x in raw.decode().splitlines() if x.strip()]
    by_id = {x["custom_id"]: x for x in out}
    assert len(by_id) == len(out)
    return by_id


async def upload(srv: LoopbackServer, lines: list[dict[str, Any]], key: str = KEY) -> Any:
    return await litellm.acreate_file(
        file=("requests.jsonl", jsonl(lines), "application/jsonl"), purpose="batch", **kw(srv, key)
    )


async def submit(srv: LoopbackServer, lines: list[dict[str, Any]], **extra: Any) -> Any:
    f = await upload(srv, lines)
    return await litellm.acreate_batch(
        completion_window="24h", endpoint="/v1/chat/completions", input_file_id=f.id, **extra, **kw(srv)
    )


async def wait(srv: LoopbackServer, batch_id: str, seen: list[str] | None = None, limit_s: float = 10) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while True:
        b = await litellm.aretrieve_batch(batch_id=batch_id, **kw(srv))
        if seen is not None and (not seen or seen[-1] != b.status):
            seen.append(b.status)
        if b.status in TERMINAL:
            return b
        assert loop.time() < end, f"batch still {b.status}"
        await asyncio.sleep(0.02)


async def content(srv: LoopbackServer, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    c = await litellm.afile_content(file_id=file_id, **kw(srv))
    return parse(c.content)


def test_batch_answers_equal_realtime_answers() -> None:
    bodies = {
        "plain": body(1),
        "seeded": body(2, seed=7),
        "judge": {
            "model": "judge",
            "messages": [
                {
                    "role": "user",
                    "content": "<conversation>\nuser: tell me about apples pears\n</conversation>\n"
                    "<answer_a>\napples pears\n</answer_a>\n<answer_b>\napples\n</answer_b>",
                }
            ],
        },
        "limited": body(3, model="skill-90", max_tokens=5),
        "aliased": body(4, model="cand"),
    }

    async def run() -> None:
        with LoopbackServer(api_key=KEY, batch_delay_s=0.6, aliases={"cand": "skill-60"}) as srv:
            b = await submit(srv, [line(cid, b) for cid, b in bodies.items()], metadata={"run": "nightly"})
            assert b.status == "validating" and b.id.startswith("batch_") and b.metadata == {"run": "nightly"}
            assert b.id in srv.batches and srv.batches[b.id]["input_file_id"] in srv.files
            seen: list[str] = []
            done = await wait(srv, b.id, seen)
            order = ["validating", "in_progress", "finalizing", "completed"]
            assert [order.index(x) for x in seen] == sorted({order.index(x) for x in seen})
            assert "in_progress" in seen and seen[-1] == "completed"
            assert done.request_counts.total == 5 and done.request_counts.completed == 5
            assert done.request_counts.failed == 0 and done.error_file_id is None
            assert done.in_progress_at is not None and done.completed_at is not None
            out = await content(srv, done.output_file_id)
            assert set(out) == set(bodies)
            batch_calls = [q for q in srv.requests if q["via"] == "batch"]
            assert len(batch_calls) == 5 and {q["custom_id"] for q in batch_calls} == set(bodies)
            assert all(q["batch_id"] == b.id and q["status"] == 200 for q in batch_calls)

            for cid, sent in bodies.items():
                entry = out[cid]
                assert entry["id"].startswith("batch_req_") and entry["error"] is None
                assert entry["response"]["status_code"] == 200
                reply = entry["response"]["body"]
                assert reply["object"] == "chat.completion" and reply["model"] == sent["model"]
                extra = {k: v for k, v in sent.items() if k not in ("model", "messages")}
                live = await litellm.acompletion(
                    model=f"openai/{sent['model']}",
                    messages=sent["messages"],
                    api_base=srv.base_url,
                    api_key=KEY,
                    num_retries=0,
                    **extra,
                )
                assert reply["choices"][0]["message"]["content"] == live.choices[0].message.content
                assert reply["choices"][0]["finish_reason"] == live.choices[0].finish_reason
                assert reply["usage"]["prompt_tokens"] == live.usage.prompt_tokens
                assert reply["usage"]["completion_tokens"] == live.usage.completion_tokens
            # the Batch object's usage sums the lines (litellm's Usage keeps only total_tokens of it reliably)
            usage = srv.batches[b.id]["usage"]
            assert usage["input_tokens"] == sum(x["response"]["body"]["usage"]["prompt_tokens"] for x in out.values())
            assert usage["output_tokens"] == sum(
                x["response"]["body"]["usage"]["completion_tokens"] for x in out.values()
            )
            assert done.usage is not None and done.usage.total_tokens == usage["total_tokens"]
            # every call was bought once in the batch and once live: the counter sees both
            counts = srv.counts_by_key()
            for sent in bodies.values():
                seed = sent.get("seed")
                assert counts[(sent["model"], messages_hash(sent["messages"]), seed)] == 2
            assert [q["via"] for q in srv.requests[5:]] == ["chat"] * 5

    asyncio.run(run())


def test_expired_batch_answers_part_and_writes_the_rest_as_batch_expired() -> None:
    async def run() -> None:
        with LoopbackServer(api_key=KEY, batch_delay_s=0.1, batch_expire=0.5, batch_shuffle=False) as srv:
            lines = [line(f"r{i}", body(i)) for i in range(6)]
            b = await submit(srv, lines)
            done = await wait(srv, b.id)
            assert done.status == "expired" and done.expired_at is not None and done.completed_at is None
            out = await content(srv, done.output_file_id)
            err = await content(srv, done.error_file_id)
            assert list(out) == ["r0", "r1", "r2"]  # answered in file order until the window closed
            assert sorted(err) == ["r3", "r4", "r5"]
            assert all(e["response"] is None and e["error"]["code"] == "batch_expired" for e in err.values())
            assert done.request_counts.completed == 3 and done.request_counts.failed == 3
            assert len([q for q in srv.requests if q["via"] == "batch"]) == 3  # the rest were never run
            assert srv.batches[b.id]["status"] == "expired"

        with LoopbackServer(batch_delay_s=0.05, batch_expire=True) as srv:
            done = await wait(srv, (await submit(srv, [line(f"r{i}", body(i)) for i in range(4)])).id)
            assert done.status == "expired" and done.request_counts.completed == 2

    asyncio.run(run())


def test_failed_requests_land_in_the_error_file() -> None:
    async def run() -> None:
        with LoopbackServer(api_key=KEY, batch_delay_s=0.1, batch_fail_share=0.5, seed=3) as srv:
            ids = [f"req-{i}" for i in range(20)]
            done = await wait(srv, (await submit(srv, [line(c, body(i)) for i, c in enumerate(ids)])).id)
            assert done.status == "completed"
            out = await content(srv, done.output_file_id)
            err = await content(srv, done.error_file_id)
            assert set(out) | set(err) == set(ids) and not set(out) & set(err)
            assert 3 <= len(err) <= 17
            for e in err.values():
                assert e["response"]["status_code"] == 500 and e["error"] is None  # an HTTP error: OpenAI's shape
                assert e["response"]["body"]["error"]["type"] == "server_error"
            assert done.request_counts.failed == len(err) and done.request_counts.completed == len(out)
            failed = {q["custom_id"] for q in srv.requests if q["status"] == 500}
            assert failed == set(err) and all(q["fault"] == "batch_fail" for q in srv.requests if q["status"] == 500)

            # chosen from custom_id: the same ids fail again in a second batch
            again = await wait(srv, (await submit(srv, [line(c, body(i + 100)) for i, c in enumerate(ids)])).id)
            assert set(await content(srv, again.error_file_id)) == set(err)

        with LoopbackServer(batch_delay_s=0.1, batch_fail_models={"skill-60"}) as srv:
            lines = [line(f"a{i}", body(i, model="skill-60")) for i in range(3)]
            lines += [line(f"b{i}", body(i, model="skill-80")) for i in range(3)]
            lines.append(line("unknown", body(9, model="no-such-model")))
            lines.append(line("streamed", body(9, stream=True)))
            done = await wait(srv, (await submit(srv, lines)).id)
            err = await content(srv, done.error_file_id)
            assert set(await content(srv, done.output_file_id)) == {"b0", "b1", "b2"}
            assert {c: e["response"]["status_code"] for c, e in err.items()} == {
                "a0": 500,
                "a1": 500,
                "a2": 500,
                "unknown": 404,
                "streamed": 400,
            }
            assert done.model is None  # mixed models

    asyncio.run(run())


def test_bad_uploads_are_refused_with_openai_errors() -> None:
    async def run() -> None:
        with LoopbackServer(api_key=KEY) as srv:
            dup = [line("same", body(1)), line("same", body(2))]
            with pytest.raises(openai.BadRequestError, match="Duplicate custom_id 'same' on line 2"):
                await upload(srv, dup)
            bad_url = [line("a", body(1)), {**line("b", body(2)), "url": "/v1/embeddings"}]
            with pytest.raises(openai.BadRequestError, match="line 2: 'url' must be '/v1/chat/completions'"):
                await upload(srv, bad_url)
            with pytest.raises(openai.BadRequestError, match="line 1: not valid JSON"):
                await litellm.acreate_file(
                    file=("x.jsonl", b"{nope\n", "application/jsonl"), purpose="batch", **kw(srv)
                )
            with pytest.raises(openai.BadRequestError, match="has no requests"):
                await litellm.acreate_file(file=("x.jsonl", b"\n", "application/jsonl"), purpose="batch", **kw(srv))
            with pytest.raises(openai.BadRequestError, match="purpose 'batch' only"):
                await litellm.acreate_file(
                    file=("x.jsonl", jsonl([line("a", body(1))])), purpose="fine-tune", **kw(srv)
                )
            with pytest.raises(openai.AuthenticationError):
                await upload(srv, [line("a", body(1))], key="sk-wrong")
            with pytest.raises(openai.BadRequestError, match="input_file_id"):
                await litellm.acreate_batch(
                    completion_window="24h", endpoint="/v1/chat/completions", input_file_id="file-nope", **kw(srv)
                )
            assert srv.files == {} and srv.batches == {} and srv.requests == []

            # a good upload: the File object, retrievable, with its bytes back
            data = jsonl([line("a", body(1))])
            f = await litellm.acreate_file(file=("good.jsonl", data, "application/jsonl"), purpose="batch", **kw(srv))
            assert (f.object, f.purpose, f.status, f.bytes, f.filename) == (
                "file",
                "batch",
                "processed",
                len(data),
                "good.jsonl",
            )
            assert (await litellm.afile_retrieve(file_id=f.id, **kw(srv))).bytes == len(data)
            assert (await litellm.afile_content(file_id=f.id, **kw(srv))).content == data
            assert srv.files[f.id]["content"] == data

    asyncio.run(run())


def test_cancel_keeps_what_was_answered() -> None:
    async def run() -> None:
        with LoopbackServer(batch_delay_s=2.0) as srv:
            lines = [line(f"r{i}", body(i)) for i in range(40)]
            b = await submit(srv, lines)
            while srv.batches[b.id]["request_counts"]["completed"] < 3:
                await asyncio.sleep(0.02)
            c = await litellm.acancel_batch(batch_id=b.id, **kw(srv))
            assert c.status == "cancelling" and c.cancelling_at is not None
            done = await wait(srv, b.id)
            assert done.status == "cancelled" and done.cancelled_at is not None
            out = await content(srv, done.output_file_id)
            err = await content(srv, done.error_file_id)
            assert 3 <= len(out) < 40 and set(out) | set(err) == {x["custom_id"] for x in lines}
            assert all(e["error"]["code"] == "batch_cancelled" for e in err.values())
            assert len([q for q in srv.requests if q["via"] == "batch"]) == len(out)
            with pytest.raises(openai.BadRequestError):  # a finished batch cannot be cancelled
                ok = await wait(srv, (await submit(srv, lines[:1])).id)
                await litellm.acancel_batch(batch_id=ok.id, **kw(srv))

    asyncio.run(run())


def test_single_model_rule_fails_a_mixed_batch() -> None:
    async def run() -> None:
        with LoopbackServer(batch_delay_s=0.05, batch_single_model=True) as srv:
            mixed = [line("a", body(1)), line("b", body(2, model="skill-60"))]
            done = await wait(srv, (await submit(srv, mixed)).id)
            assert done.status == "failed" and done.failed_at is not None and done.output_file_id is None
            assert done.errors is not None and done.errors.data[0].line == 2
            assert srv.requests == []
            one = await wait(srv, (await submit(srv, [line("a", body(1))])).id)
            assert one.status == "completed" and one.model == "skill-80"

    asyncio.run(run())


def raw(
    srv: LoopbackServer, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://{srv.host}:{srv.port}{path}", data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_raw_http_paths_without_v1_auth_and_chunked_upload() -> None:
    with LoopbackServer(api_key=KEY, batch_delay_s=0.05) as srv:
        auth = {"Authorization": f"Bearer {KEY}"}
        status, reply = raw(srv, "GET", "/v1/batches/batch_x")
        assert status == 401 and json.loads(reply)["error"]["code"] == "invalid_api_key"
        assert raw(srv, "GET", "/batches/batch_x", headers=auth)[0] == 404

        # a chunked multipart upload to /files (no /v1)
        boundary = "XyZ"
        payload = jsonl([line("a", body(1)), line("b", body(2))])
        form = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + payload
            + f"\r\n--{boundary}--\r\n".encode()
        )
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
        conn.putrequest("POST", "/files")
        for k, v in {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}.items():
            conn.putheader(k, v)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(form), 100):
            chunk = form[i : i + 100]
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        f = json.loads(r.read())
        conn.close()
        assert r.status == 200 and f["bytes"] == len(payload) and f["filename"] == "in.jsonl"
        assert raw(srv, "GET", f"/files/{f['id']}/content", headers=auth) == (200, payload)

        req = {"input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        status, reply = raw(
            srv, "POST", "/batches", json.dumps(req).encode(), {**auth, "Content-Type": "application/json"}
        )
        assert status == 200
        bid = json.loads(reply)["id"]
        bad = {**req, "endpoint": "/v1/embeddings"}
        assert raw(srv, "POST", "/v1/batches", json.dumps(bad).encode(), auth)[0] == 400
        status, listing = raw(srv, "GET", "/v1/batches?limit=5", headers=auth)
        assert status == 200 and [b["id"] for b in json.loads(listing)["data"]] == [bid]
        status, files = raw(srv, "GET", "/v1/files", headers=auth)
        assert [x["id"] for x in json.loads(files)["data"]] == [f["id"]]
        assert raw(srv, "DELETE", f"/v1/files/{f['id']}", headers=auth)[0] == 200
        assert f["id"] not in srv.files
