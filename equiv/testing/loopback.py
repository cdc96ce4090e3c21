"""A real OpenAI-compatible HTTP server on 127.0.0.1, answering with the simulated world of fake.py.

Why: the in-package ``fake/`` litellm provider never touches HTTP, so it cannot show how the runner
behaves against real transport failures (429 with ``retry-after``, 500, a read timeout, a reset
socket, a judge that answers nonsense) or under many keep-alive connections. This server can, and it
records every request so a test can assert "no call was bought twice".

Stdlib only. Usage::

    with LoopbackServer(latency_s=0.05, rate_500=0.1, seed=1) as srv:
        litellm.acompletion(model="openai/skill-90", api_base=srv.base_url, api_key="sk-test", ...)
        srv.aliases["cand"] = "skill-60"       # degrade a candidate between two "nights"
        srv.counts_by_key()                    # Counter[(model, messages sha256, seed)] of successes

Conventions:
- ``sample`` given to ``fake.reply`` is the request's ``seed`` when it is an int, else 0.
- The model answered is the request's ``model`` after ``aliases``; the response echoes the requested name.
- Faults are drawn per request from ``random.Random`` seeded by (``seed``, model, messages hash, request
  seed, attempt number of that same key). A single uniform draw falls into consecutive bands
  ``rate_429, rate_500, rate_timeout, rate_reset, rate_garbage`` (so the rates must sum to <= 1).
  Because the draw depends on the request and not on arrival order, a run is reproducible even under
  concurrency, and a retry of the same call (next attempt number) gets a fresh draw.
- Careless providers: ``echo_headers`` quotes the request headers in error bodies; ``quote_key`` quotes
  the caller's key (whatever it sent as Bearer token) in an error URL, as is (``?key=``) and URL-encoded
  (``&api-key=``). ``ramble_tokens`` makes ``ramble_models`` (all models if None) bill that many completion
  tokens whenever a request sets no output limit, and honour one when it is set (cut, finish_reason
  "length") unless ``ignore_limits``; ``reasoning_tokens`` adds reasoning tokens reported apart from
  completion_tokens. ``requests`` records each request's ``max_tokens`` / ``max_completion_tokens``.
- ``python -m equiv.testing.loopback --latency 0.2`` serves from its own process (benchmarks use it so
  the server's CPU is not counted as the client's) and prints the base URL on the first line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from equiv.llm import fake

GARBAGE_REPLIES = ("I think both are fine", '{"winner": "A", "reas')
CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
MODEL_PATHS = frozenset({"/v1/models", "/models"})
LISTED_MODELS = tuple(f"skill-{n}" for n in (50, 60, 70, 80, 90, 100)) + (
    "skill-90-verbose",
    "judge",
    "judge-verbose",
    "judge-always-a",
    "judge-tie",
    "judge-brackets",
)

Key = tuple[str, str, int | None]


def messages_hash(messages: Any) -> str:
    """sha256 of the canonical JSON of ``messages``: the key tests use to spot a call bought twice."""
    canon = json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode()).hexdigest()


def _error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _Stopped(Exception):
    """The server is closing while a request sleeps: drop the request without answering."""


class _HTTPServer(ThreadingHTTPServer):
    """Daemon threads (a sleeping 'timeout' request never blocks exit) and a deep accept backlog."""

    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, resets) are expected here: stay quiet about them."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError, ValueError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with exact Content-Length on every reply, so clients keep their connections alive."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a benchmark makes thousands of requests."""

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.owner._track(self.connection, add=False)

    # -- plumbing -------------------------------------------------------------------------------
    def _send_json(self, status: int, body: Any, extra_headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _reset(self) -> None:
        """Close the socket with SO_LINGER 0: the kernel sends RST, the client sees a reset."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except OSError:
                pass
        self.connection.close()

    # -- routes ---------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in MODEL_PATHS:
            owner = self.server.owner
            names = list(dict.fromkeys([*LISTED_MODELS, *owner.aliases]))
            created = int(owner.started_at)
            data = [{"id": n, "object": "model", "created": created, "owned_by": "equiv-loopback"} for n in names]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, _error_body(f"no route GET {self.path}", "invalid_request_error", "not_found"))

    def do_POST(self) -> None:
        raw = self._read_body()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in CHAT_PATHS:
            self._send_json(404, _error_body(f"no route POST {self.path}", "invalid_request_error", "not_found"))
            return
        try:
            self.server.owner._chat(self, raw)
        except _Stopped:
            self._reset()


class LoopbackServer:
    """An OpenAI-compatible chat-completions server on a free loopback port, with fault injection.

    Every attribute below may be changed while the server runs (tests degrade a model between nights).
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        api_key: str | None = None,
        aliases: dict[str, str] | None = None,
        seed: int = 0,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        rate_timeout: float = 0.0,
        rate_reset: float = 0.0,
        rate_garbage: float = 0.0,
        retry_after: float | None = None,
        timeout_sleep_s: float = 30.0,
        fail_first_n: int = 0,
        faults_for_models: set[str] | None = None,
        echo_headers: bool = False,
        quote_key: bool = False,
        ramble_tokens: int | None = None,
        ramble_models: set[str] | None = None,
        ignore_limits: bool = False,
        reasoning_tokens: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        rates = (rate_429, rate_500, rate_timeout, rate_reset, rate_garbage)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must each be in [0, 1] and sum to <= 1, got {rates}")
        self.latency_s = latency_s
        self.api_key = api_key
        self.aliases: dict[str, str] = dict(aliases or {})
        self.seed = seed
        self.rate_429 = rate_429
        self.rate_500 = rate_500
        self.rate_timeout = rate_timeout
        self.rate_reset = rate_reset
        self.rate_garbage = rate_garbage
        self.retry_after = retry_after
        self.timeout_sleep_s = timeout_sleep_s
        self.fail_first_n = fail_first_n
        self.faults_for_models = faults_for_models
        self.echo_headers = echo_headers
        self.quote_key = quote_key
        self.ramble_tokens = ramble_tokens
        self.ramble_models = ramble_models
        self.ignore_limits = ignore_limits
        self.reasoning_tokens = reasoning_tokens
        self.requests: list[dict[str, Any]] = []
        self.max_in_flight = 0
        self.started_at = time.time()

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._attempts: Counter[Key] = Counter()
        self._successes: Counter[Key] = Counter()
        self._eligible_seen = 0
        self._n_429 = 0
        self._in_flight = 0
        self._serial = 0

        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.owner = self
        addr = self._httpd.server_address
        self.host: str = str(addr[0])
        self.port: int = int(addr[1])
        self.base_url = f"http://{self.host}:{self.port}/v1"
        # A short poll interval: shutdown() waits up to one interval, and tests open many servers.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback", daemon=True
        )
        self._thread.start()

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, wake sleeping requests, cut idle keep-alive connections, join the thread."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # -- assertions ---------------------------------------------------------------------------------
    def counts_by_key(self) -> Counter[Key]:
        """Successful (200, not garbage, not a fault) replies per (requested model, messages sha256, seed)."""
        with self._lock:
            return Counter(self._successes)

    def reset_stats(self) -> None:
        """Forget recorded requests, counts and the fail_first_n counter (faults restart from attempt 0)."""
        with self._lock:
            self.requests.clear()
            self._attempts.clear()
            self._successes.clear()
            self._eligible_seen = 0
            self._n_429 = 0
            self.max_in_flight = self._in_flight

    # -- the chat route -------------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self._stop.wait(seconds):
            raise _Stopped

    def _chat(self, h: _Handler, raw: bytes) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._chat_inner(h, raw)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _echo(self, message: str, headers: dict[str, str]) -> str:
        """A careless provider quotes the request back in its error: the Authorization header (echo_headers),
        or the caller's key in the URL of the upstream call that failed, as is and URL-encoded (quote_key),
        the way Google's APIs show `?key=`."""
        if self.quote_key:
            key = headers.get("authorization", "").removeprefix("Bearer ").strip()
            message = (
                f"{message} (while calling https://upstream.invalid/v1beta/models/m:generateContent?key={key}"
                f"&alt=json; retry: https://upstream.invalid/v1/chat?api-key={urllib.parse.quote(key, safe='')}"
                f" with x-goog-api-key: {key})"
            )
        return f"{message} Request headers: {json.dumps(headers)}" if self.echo_headers else message

    def _limited(self, model: str, requested: str, body: dict[str, Any], text: str, ct: int) -> tuple[str, int, str]:
        """(text, completion tokens, finish reason) under the request's output limit.

        A rambling model (`ramble_models`, `ramble_tokens`) writes `ramble_tokens` tokens when the request sets
        no limit, as a model with no stop in it would until the provider's own ceiling; a limit is honoured
        (the answer is cut at it, finish_reason "length") unless `ignore_limits`.
        """
        limit = next(
            (
                v
                for v in (body.get("max_tokens"), body.get("max_completion_tokens"))
                if isinstance(v, int) and not isinstance(v, bool) and v > 0
            ),
            None,
        )
        rambles = self.ramble_tokens is not None and (
            self.ramble_models is None or requested in self.ramble_models or model in self.ramble_models
        )
        if rambles and (limit is None or self.ignore_limits):
            filler = " ".join(["and furthermore"] * 200)
            return f"{text} {filler}", int(self.ramble_tokens or 0), "stop"
        if rambles and limit is not None and ct > limit:
            return " ".join(text.split()[:limit]), limit, "length"
        return text, ct, "stop"

    def _chat_inner(self, h: _Handler, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in h.headers.items()}
        try:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
        except ValueError as e:
            self._record({}, None, None, 400, "bad_request", headers)
            h._send_json(400, _error_body(f"invalid JSON body: {e}", "invalid_request_error", "invalid_json"))
            return
        requested = str(body.get("model", ""))
        messages = body.get("messages")
        seed = body.get("seed")
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
        mhash = messages_hash(messages)
        key: Key = (requested, mhash, seed)

        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            self._record(body, mhash, seed, 401, "auth", headers)
            h._send_json(
                401,
                _error_body(
                    self._echo(f"Incorrect API key provided: {headers.get('authorization', '')[7:]}.", headers),
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )
            return
        if body.get("stream"):
            self._record(body, mhash, seed, 400, "stream", headers)
            h._send_json(
                400,
                _error_body(
                    "stream=true is not supported by the equiv loopback server; send stream=false.",
                    "invalid_request_error",
                    "unsupported_parameter",
                    "stream",
                ),
            )
            return
        if not isinstance(messages, list) or not requested:
            self._record(body, mhash, seed, 400, "bad_request", headers)
            h._send_json(400, _error_body("'model' and 'messages' are required.", "invalid_request_error", None))
            return

        self._sleep(self.latency_s)
        model = self.aliases.get(requested, requested)
        fault = self._draw_fault(key, model)

        if fault == "429":
            with self._lock:
                self._n_429 += 1
                with_header = self.retry_after is not None and self._n_429 % 2 == 1
            extra = {"retry-after": f"{self.retry_after:g}"} if with_header else {}
            self._record(body, mhash, seed, 429, fault, headers)
            h._send_json(
                429,
                _error_body(self._echo("Rate limit reached (simulated).", headers), "requests", "rate_limit_exceeded"),
                extra,
            )
            return
        if fault in ("500", "fail_first_n"):
            self._record(body, mhash, seed, 500, fault, headers)
            h._send_json(
                500, _error_body(self._echo("The server had an error (simulated).", headers), "server_error", None)
            )
            return
        if fault == "reset":
            self._record(body, mhash, seed, None, fault, headers)
            h._reset()
            return

        try:
            text, pt, ct = fake.reply(model, messages, seed if seed is not None else 0)
        except ValueError as e:
            self._record(body, mhash, seed, 404, "unknown_model", headers)
            h._send_json(404, _error_body(str(e), "invalid_request_error", "model_not_found", "model"))
            return
        if fault == "garbage":
            text = random.Random(f"{self.seed}|garbage|{key}").choice(GARBAGE_REPLIES)
            ct = fake.count_tokens(text)
        text, ct, cut = self._limited(model, requested, body, text, ct)
        self._record(body, mhash, seed, 200, fault, headers, usage=self._usage(pt, ct))
        if fault is None:
            with self._lock:
                self._successes[key] += 1
        if fault == "timeout":
            self._sleep(self.timeout_sleep_s)
        with self._lock:
            self._serial += 1
            rid = f"chatcmpl-loopback-{self._serial:08d}"
        message, finish = fake.shape(model, messages, text, body.get("tools"))  # tool calls, content filter ...
        finish = "length" if cut == "length" and finish == "stop" else finish
        h._send_json(
            200,
            {
                "id": rid,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": requested,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": self._usage(pt, ct),
            },
        )

    def _usage(self, pt: int, ct: int) -> dict[str, Any]:
        """OpenAI's usage block; `reasoning_tokens` are reported apart from completion_tokens (as some
        OpenAI-compatible servers do), with total_tokens covering them."""
        usage: dict[str, Any] = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
        if self.reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
            usage["total_tokens"] += self.reasoning_tokens
        return usage

    def _draw_fault(self, key: Key, model: str) -> str | None:
        """Which fault (if any) this attempt of this call suffers; see the module docstring."""
        limited = self.faults_for_models
        if limited is not None and key[0] not in limited and model not in limited:
            return None
        with self._lock:
            self._eligible_seen += 1
            if self._eligible_seen <= self.fail_first_n:
                return "fail_first_n"
            attempt = self._attempts[key]
            self._attempts[key] += 1
        u = random.Random(f"{self.seed}|{key[0]}|{key[1]}|{key[2]}|{attempt}").random()
        for name, rate in (
            ("429", self.rate_429),
            ("500", self.rate_500),
            ("timeout", self.rate_timeout),
            ("reset", self.rate_reset),
            ("garbage", self.rate_garbage),
        ):
            if u < rate:
                return None if name == "garbage" and not fake.is_judge(model) else name
            u -= rate
        return None

    def _record(
        self,
        body: dict[str, Any],
        mhash: str | None,
        seed: int | None,
        status: int | None,
        fault: str | None,
        headers: dict[str, str],
        usage: dict[str, Any] | None = None,
    ) -> None:
        """``status`` None means no HTTP response was sent (reset); ``usage`` is what a 200 billed."""
        requested = str(body.get("model", ""))
        entry = {
            "model": requested,
            "resolved_model": self.aliases.get(requested, requested),
            "messages_sha256": mhash,
            "seed": seed,
            "status": status,
            "fault": fault,
            "headers": headers,
            "max_tokens": body.get("max_tokens"),
            "max_completion_tokens": body.get("max_completion_tokens"),
            "usage": usage,
            "t": time.time(),
        }
        with self._lock:
            self.requests.append(entry)


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; print the base URL first so a parent process can read it."""
    p = argparse.ArgumentParser(description="equiv loopback OpenAI-compatible server (simulated models)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--api-key", default=None)
    args = p.parse_args(argv)
    srv = LoopbackServer(latency_s=args.latency, api_key=args.api_key, port=args.port)
    print(srv.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()


if __name__ == "__main__":
    main()
