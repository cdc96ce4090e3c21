"""The loopback OpenAI-compatible server, driven through real litellm and through raw urllib.

The exception classes asserted here are the ones litellm 1.106.2 was observed to raise; if an upgrade
changes them, the runner's retry classification must be revisited too.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

from equiv.llm import fake
from equiv.testing import LoopbackServer, messages_hash
from equiv.testing.loopback import GARBAGE_REPLIES

litellm.suppress_debug_info = True
litellm.disable_hf_tokenizer_download = True

MSGS = [{"role": "user", "content": "Explain photosynthesis, chlorophyll, sunlight and carbon dioxide."}]
JUDGE_MSGS = [
    {
        "role": "user",
        "content": "<conversation>\nuser: tell me about apples pears\n</conversation>\n"
        "<answer_a>\napples pears\n</answer_a>\n<answer_b>\napples\n</answer_b>",
    }
]


def call(srv: LoopbackServer, model: str = "skill-90", messages: Any = None, **kw: Any) -> Any:
    """One litellm call against the server (sync wrapper around acompletion)."""
    kw.setdefault("api_key", "sk-test")
    kw.setdefault("timeout", 5)
    return asyncio.run(
        litellm.acompletion(
            model=f"openai/{model}", api_base=srv.base_url, messages=messages or MSGS, num_retries=0, **kw
        )
    )


def post(srv: LoopbackServer, body: dict[str, Any], key: str | None = "sk-test") -> tuple[int, dict[str, str], Any]:
    """Raw POST with urllib: (status, lower-cased headers, parsed JSON body)."""
    req = urllib.request.Request(
        srv.base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, json.loads(e.read())


def test_reply_matches_fake_world_with_usage() -> None:
    with LoopbackServer() as srv:
        r = call(srv, seed=3)
        text, pt, ct = fake.reply("skill-90", MSGS, 3)
        assert r.choices[0].message.content == text
        assert r.choices[0].finish_reason == "stop"
        assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (pt, ct, pt + ct)
        assert srv.requests[0]["seed"] == 3 and srv.requests[0]["status"] == 200


def test_raw_http_reply_models_and_errors() -> None:
    with LoopbackServer() as srv:
        status, headers, body = post(srv, {"model": "skill-70", "messages": MSGS})
        assert status == 200 and body["object"] == "chat.completion" and body["model"] == "skill-70"
        assert body["choices"][0]["message"]["content"] == fake.reply("skill-70", MSGS, 0)[0]  # no seed -> 0
        assert int(headers["content-length"]) > 0
        with urllib.request.urlopen(srv.base_url + "/models", timeout=5) as r:
            ids = {m["id"] for m in json.loads(r.read())["data"]}
        assert {"skill-90", "judge"} <= ids
        status, _, body = post(srv, {"model": "skill-70", "messages": MSGS, "stream": True})
        assert status == 400 and body["error"]["param"] == "stream"
        status, _, body = post(srv, {"model": "nope", "messages": MSGS})
        assert status == 404 and body["error"]["code"] == "model_not_found"


def test_keep_alive_connection_is_reused() -> None:
    with LoopbackServer() as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
        for _ in range(3):
            conn.request("POST", "/v1/chat/completions", json.dumps({"model": "skill-50", "messages": MSGS}))
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["usage"]["total_tokens"] > 0
        conn.close()


def test_auth_401_is_authentication_error_and_headers_recorded() -> None:
    with LoopbackServer(api_key="sk-test") as srv:
        assert call(srv).choices[0].message.content
        with pytest.raises(litellm.AuthenticationError):
            call(srv, api_key="sk-wrong")
        status, _, body = post(srv, {"model": "skill-90", "messages": MSGS}, key=None)
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        assert srv.requests[0]["headers"]["authorization"] == "Bearer sk-test"
        assert [r["status"] for r in srv.requests] == [200, 401, 401]


def test_429_is_rate_limit_error_and_retry_after_on_every_other() -> None:
    with LoopbackServer(rate_429=1.0, retry_after=0) as srv:
        with pytest.raises(litellm.RateLimitError):
            call(srv)
        got = [post(srv, {"model": "skill-90", "messages": MSGS})[1].get("retry-after") for _ in range(2)]
        assert sorted(got, key=str) == ["0", None]  # the 2nd and 3rd 429s: one with, one without
        assert srv.counts_by_key() == {}


def test_500_and_fail_first_n() -> None:
    with LoopbackServer(rate_500=1.0) as srv:
        with pytest.raises(litellm.InternalServerError):
            call(srv)
        assert len(srv.requests) == 1  # num_retries=0: the SDK did not retry behind our back
    with LoopbackServer(fail_first_n=2) as srv:
        assert [post(srv, {"model": "skill-90", "messages": MSGS})[0] for _ in range(3)] == [500, 500, 200]


def test_timeout_is_litellm_timeout_and_close_is_prompt() -> None:
    srv = LoopbackServer(rate_timeout=1.0, timeout_sleep_s=30)
    with pytest.raises(litellm.Timeout):
        call(srv, timeout=0.3)
    t0 = time.monotonic()
    srv.close()  # wakes the request still sleeping on the server side
    assert time.monotonic() - t0 < 3
    assert srv.counts_by_key() == {}


def test_reset_is_connection_error() -> None:
    with LoopbackServer(rate_reset=1.0) as srv:
        # Observed with litellm 1.106.2: the openai SDK raises APIConnectionError("Connection error."),
        # and litellm's openai mapping turns it into an InternalServerError (status 500), not
        # litellm.APIConnectionError.
        with pytest.raises(litellm.InternalServerError, match="Connection error"):
            call(srv)
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected, urllib.error.URLError)):
            post(srv, {"model": "skill-90", "messages": MSGS})
        assert [r["status"] for r in srv.requests] == [None, None]


def test_garbage_only_for_judges() -> None:
    with LoopbackServer(rate_garbage=1.0) as srv:
        assert call(srv, "judge", JUDGE_MSGS).choices[0].message.content in GARBAGE_REPLIES
        assert call(srv).choices[0].message.content == fake.reply("skill-90", MSGS)[0]
        assert list(srv.counts_by_key()) == [("skill-90", messages_hash(MSGS), None)]
    with LoopbackServer() as srv:
        assert json.loads(call(srv, "judge", JUDGE_MSGS).choices[0].message.content)["winner"] == "A"


def test_aliases_change_at_runtime() -> None:
    with LoopbackServer(aliases={"cand": "skill-100"}) as srv:
        first = call(srv, "cand").choices[0].message.content
        assert first == fake.reply("skill-100", MSGS)[0]
        srv.aliases["cand"] = "skill-10"
        assert call(srv, "cand").choices[0].message.content == fake.reply("skill-10", MSGS)[0] != first
        assert [r["resolved_model"] for r in srv.requests] == ["skill-100", "skill-10"]


def test_counts_by_key_and_reset_stats() -> None:
    with LoopbackServer() as srv:
        call(srv, seed=1)
        call(srv, seed=1)
        call(srv, seed=2)
        h = messages_hash(MSGS)
        assert srv.counts_by_key() == {("skill-90", h, 1): 2, ("skill-90", h, 2): 1}
        srv.reset_stats()
        assert srv.counts_by_key() == {} and srv.requests == []


def test_faults_are_reproducible_and_restricted_by_model() -> None:
    def statuses(**kw: Any) -> list[int]:
        with LoopbackServer(rate_500=0.5, **kw) as srv:
            return [post(srv, {"model": "skill-90", "messages": MSGS, "seed": i})[0] for i in range(20)]

    a, b = statuses(seed=7), statuses(seed=7)
    assert a == b and 200 in a and 500 in a
    assert statuses(seed=7, faults_for_models={"judge"}) == [200] * 20
    with pytest.raises(ValueError):
        LoopbackServer(rate_500=0.7, rate_429=0.7)


def test_concurrency_64_keep_alive_calls() -> None:
    with LoopbackServer(latency_s=0.2) as srv:

        async def run() -> list[Any]:
            msgs = [[{"role": "user", "content": f"question number {i} about rivers"}] for i in range(64)]
            return await asyncio.gather(
                *(
                    litellm.acompletion(
                        model="openai/skill-80",
                        api_base=srv.base_url,
                        api_key="sk-test",
                        messages=m,
                        num_retries=0,
                        timeout=10,
                    )
                    for m in msgs
                )
            )

        t0 = time.monotonic()
        results = asyncio.run(run())
        elapsed = time.monotonic() - t0
        assert len(results) == 64 and all(r.choices[0].message.content for r in results)
        assert elapsed < 5, elapsed  # serial would be 12.8 s
        assert srv.max_in_flight > 8
        assert sum(srv.counts_by_key().values()) == 64


def test_a_rambling_model_bills_its_ceiling_unless_a_limit_is_sent() -> None:
    with LoopbackServer(ramble_tokens=200_000, ramble_models={"skill-90"}) as srv:
        free = call(srv)
        limited = call(srv, max_tokens=5)
        other = call(srv, "skill-70")  # not rambling: as before
        assert free.usage.completion_tokens == 200_000
        assert limited.usage.completion_tokens == 5 and limited.choices[0].finish_reason == "length"
        assert len(limited.choices[0].message.content.split()) == 5
        assert other.usage.completion_tokens == fake.reply("skill-70", MSGS)[2]
        assert [q["max_tokens"] for q in srv.requests] == [None, 5, None]
        assert srv.requests[0]["usage"]["completion_tokens"] == 200_000
    with LoopbackServer(ramble_tokens=1000, ignore_limits=True) as srv:
        assert call(srv, max_completion_tokens=5).usage.completion_tokens == 1000
        assert srv.requests[0]["max_completion_tokens"] == 5


def test_quote_key_puts_the_callers_key_in_error_urls() -> None:
    key = "AIzaSy" + "Tt+/" + "x" * 29
    with LoopbackServer(quote_key=True, rate_500=1.0) as srv:
        status, _, body = post(srv, {"model": "skill-90", "messages": MSGS}, key=key)
    msg = body["error"]["message"]
    assert status == 500 and f"?key={key}&" in msg and "api-key=AIzaSyTt%2B%2F" in msg


def test_reasoning_tokens_are_reported_apart() -> None:
    with LoopbackServer(reasoning_tokens=40) as srv:
        status, _, body = post(srv, {"model": "skill-90", "messages": MSGS})
    u = body["usage"]
    assert u["completion_tokens_details"] == {"reasoning_tokens": 40}
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] + 40
