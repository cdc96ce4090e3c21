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
- ``requests`` entries carry ``via``: "chat" (the real-time route) or "batch" (then also ``batch_id`` and
  ``custom_id``); batch calls count in ``counts_by_key`` too, so "bought twice" spans both routes.
- OpenAI's Files and Batch APIs, in OpenAI's shapes, each also without the ``/v1`` prefix and behind the
  same ``api_key`` check: ``POST /v1/files`` (multipart ``purpose="batch"`` + ``file``, a JSONL of
  ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`` lines; a bad line or a
  duplicate custom_id is a 400 naming the line), ``GET /v1/files``, ``GET /v1/files/{id}``, ``GET
  /v1/files/{id}/content``, ``DELETE /v1/files/{id}``, ``POST /v1/batches`` (``input_file_id``, ``endpoint``
  "/v1/chat/completions", ``completion_window`` "24h", ``metadata``), ``GET /v1/batches``, ``GET
  /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``. ``files`` (id -> File object + ``content`` bytes)
  and ``batches`` (id -> the Batch object as served) are there for tests to read.
- A batch runs in its own thread over ``batch_delay_s``: ``validating`` (1/5), ``in_progress`` (the
  requests answered in file order, spread over 7/10, ``request_counts`` and ``usage`` growing), then
  ``finalizing`` (1/10) and ``completed``. Each request gets exactly the real-time route's answer (same
  simulated model, aliases, output limits, usage), without its latency and transport faults. Output lines
  are ``{"id", "custom_id", "response": {"status_code": 200, "request_id", "body": <chat.completion>},
  "error": null}``; requests that got an HTTP error (400 stream, 404 unknown model, 500 batch fault) go to
  the error file with that status and ``{"error": {...}}`` body and ``"error": null``, as OpenAI writes
  them; requests never run are error lines with ``"response": null`` and ``"error": {"code":
  "batch_expired" | "batch_cancelled", "message"}``. An output or error file with no lines is not made
  (its id stays None). Lines are shuffled (``batch_shuffle``, as OpenAI keeps no order): match by custom_id.
  ``request_counts``: completed = output lines, failed = error lines.
- Batch faults: ``batch_expire`` (True = half, or the share of requests left unanswered) ends the batch
  ``expired`` after answering the first ones in file order; ``batch_fail_share`` makes that share of
  requests fail with a 500, drawn from (``seed``, custom_id) so the same ids fail every time;
  ``batch_fail_models`` limits those failures to requests for these models (requested or resolved name;
  alone, without a share, all their requests fail); ``batch_single_model`` fails (status ``failed``,
  ``errors``) a batch that mixes models, as OpenAI does. A cancel moves the batch to ``cancelling``, then
  (after 1/10 of ``batch_delay_s``) ``cancelled`` with the answers so far. ``batch_create_reply_delay_s``
  creates a batch at once but answers its ``POST /v1/batches`` that much later (a client killed meanwhile
  never learns the id of a batch that runs).
- ``python -m equiv.testing.loopback --latency 0.2`` serves from its own process (benchmarks use it so
  the server's CPU is not counted as the client's) and prints the base URL on the first line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
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


def _invalid_chat(body: dict[str, Any]) -> tuple[int, dict[str, Any], str] | None:
    """(status, error body, fault name) when a chat body is refused before any model runs, else None."""
    if body.get("stream"):
        message = "stream=true is not supported by the equiv loopback server; send stream=false."
        return 400, _error_body(message, "invalid_request_error", "unsupported_parameter", "stream"), "stream"
    if not isinstance(body.get("messages"), list) or not str(body.get("model", "")):
        return 400, _error_body("'model' and 'messages' are required.", "invalid_request_error", None), "bad_request"
    return None


def _seed_of(body: dict[str, Any]) -> int | None:
    seed = body.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


class _Refused(Exception):
    """A Files/Batch API request refused with an OpenAI-style error body."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = _error_body(message, type_, code, param)


@dataclass
class _Job:
    """A batch's private state: its requests, what was answered so far and the worker answering them."""

    lines: list[dict[str, Any]]
    headers: dict[str, str]
    wake: threading.Event = field(default_factory=threading.Event)
    cancel: bool = False
    done: set[str] = field(default_factory=set)
    outputs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    thread: threading.Thread = field(default_factory=threading.Thread)


def _batch_route(path: str) -> list[str] | None:
    """The path's segments after an optional ``/v1`` when it is a Files or Batch API path, else None."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["v1"]:
        parts = parts[1:]
    return parts if parts[:1] in (["files"], ["batches"]) else None


def _public_file(f: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in f.items() if k != "content"}


def _jsonl(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, bytes) of a multipart/form-data body."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if m is None:
        raise _Refused(400, "multipart/form-data without a boundary.")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in raw.split(b"--" + m.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, sep, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        disposition = next(
            (
                line.decode("utf-8", "replace")
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-disposition:")
            ),
            "",
        )
        name = re.search(r'(?:^|[;\s])name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if name is not None:
            fields[name.group(1)] = (filename.group(1) if filename else None, data.removesuffix(b"\r\n"))
    return fields


def _batch_lines(content: bytes) -> list[dict[str, Any]]:
    """The requests of a batch input file, or _Refused (400) naming the first line at fault."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(
            400, "The batch input file is not UTF-8 text.", code="invalid_file_format", param="file"
        ) from None
    lines: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    problem: str | None
    for n, raw_line in enumerate(text.splitlines(), 1):
        if not raw_line.strip():
            continue
        try:
            line = json.loads(raw_line)
        except ValueError as e:
            line, problem = None, f"not valid JSON ({e})"
        else:
            problem = _line_problem(line)
        if problem is None and line["custom_id"] in seen:
            raise _Refused(
                400,
                f"Duplicate custom_id {line['custom_id']!r} on line {n} (first on line {seen[line['custom_id']]}).",
                code="duplicate_custom_id",
                param="file",
            )
        if problem is not None:
            raise _Refused(
                400, f"Invalid batch input file, line {n}: {problem}.", code="invalid_file_format", param="file"
            )
        seen[line["custom_id"]] = n
        lines.append(line)
    if not lines:
        raise _Refused(400, "The batch input file has no requests.", code="invalid_file_format", param="file")
    return lines


def _line_problem(line: Any) -> str | None:
    """What is wrong with one line of a batch input file, or None."""
    if not isinstance(line, dict):
        return "not a JSON object"
    if not isinstance(line.get("custom_id"), str) or not line["custom_id"]:
        return "'custom_id' must be a non-empty string"
    if line.get("method") != "POST":
        return "'method' must be 'POST'"
    if line.get("url") != "/v1/chat/completions":
        return "'url' must be '/v1/chat/completions'"
    if not isinstance(line.get("body"), dict):
        return "'body' must be a JSON object"
    return None


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

    def _send_raw(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":  # streamed multipart uploads
            chunks = []
            while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
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
        owner = self.server.owner
        if path in MODEL_PATHS:
            names = list(dict.fromkeys([*LISTED_MODELS, *owner.aliases]))
            created = int(owner.started_at)
            data = [{"id": n, "object": "model", "created": created, "owned_by": "equiv-loopback"} for n in names]
            self._send_json(200, {"object": "list", "data": data})
        elif _batch_route(path) is not None:
            owner._batch_api(self, "GET", _batch_route(path) or [], b"")
        else:
            self._send_json(404, _error_body(f"no route GET {self.path}", "invalid_request_error", "not_found"))

    def do_POST(self) -> None:
        raw = self._read_body()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in CHAT_PATHS:
            try:
                self.server.owner._chat(self, raw)
            except _Stopped:
                self._reset()
        elif _batch_route(path) is not None:
            self.server.owner._batch_api(self, "POST", _batch_route(path) or [], raw)
        else:
            self._send_json(404, _error_body(f"no route POST {self.path}", "invalid_request_error", "not_found"))

    def do_DELETE(self) -> None:
        self._read_body()
        path = self.path.split("?", 1)[0].rstrip("/")
        if _batch_route(path) is not None:
            self.server.owner._batch_api(self, "DELETE", _batch_route(path) or [], b"")
        else:
            self._send_json(404, _error_body(f"no route DELETE {self.path}", "invalid_request_error", "not_found"))


class LoopbackServer:
    """An OpenAI-compatible chat-completions (and Files / Batch) server on a free loopback port, with fault
    injection (see the module docstring for every knob).

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
        batch_delay_s: float = 0.3,
        batch_expire: bool | float = False,
        batch_fail_share: float | None = None,
        batch_fail_models: set[str] | None = None,
        batch_single_model: bool = False,
        batch_shuffle: bool = True,
        batch_create_reply_delay_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        shares = (float(batch_expire), batch_fail_share or 0.0)
        if any(not 0.0 <= x <= 1.0 for x in shares):
            raise ValueError(f"batch_expire and batch_fail_share must be in [0, 1], got {shares}")
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
        self.batch_delay_s = batch_delay_s
        self.batch_expire = batch_expire
        self.batch_fail_share = batch_fail_share
        self.batch_fail_models = batch_fail_models
        self.batch_single_model = batch_single_model
        self.batch_shuffle = batch_shuffle
        self.batch_create_reply_delay_s = batch_create_reply_delay_s
        self.requests: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}  # id -> File object + "content" (bytes)
        self.batches: dict[str, dict[str, Any]] = {}  # id -> Batch object, as GET /v1/batches/{id} serves it
        self._jobs: dict[str, _Job] = {}
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
        self._n_files = 0
        self._n_batches = 0

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
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.wake.set()
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
        for job in jobs:
            if job.thread.ident is not None:
                job.thread.join(timeout=5)

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

    def _auth_error(self, headers: dict[str, str]) -> dict[str, Any] | None:
        """The 401 body when the server has an ``api_key`` and the request does not carry it, else None."""
        if self.api_key is None or headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return _error_body(
            self._echo(f"Incorrect API key provided: {headers.get('authorization', '')[7:]}.", headers),
            "invalid_request_error",
            "invalid_api_key",
        )

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
        seed = _seed_of(body)
        mhash = messages_hash(messages)
        key: Key = (requested, mhash, seed)

        refused = self._auth_error(headers)
        if refused is not None:
            self._record(body, mhash, seed, 401, "auth", headers)
            h._send_json(401, refused)
            return
        invalid = _invalid_chat(body)
        if invalid is not None:
            status, error, fault_name = invalid
            self._record(body, mhash, seed, status, fault_name, headers)
            h._send_json(status, error)
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

        status, reply, usage = self._generate(body, requested, model, messages, seed, key, fault)
        if status != 200:
            self._record(body, mhash, seed, status, "unknown_model", headers)
            h._send_json(status, reply)
            return
        self._record(body, mhash, seed, 200, fault, headers, usage=usage)
        if fault is None:
            with self._lock:
                self._successes[key] += 1
        if fault == "timeout":
            self._sleep(self.timeout_sleep_s)
        h._send_json(200, reply)

    def _generate(
        self,
        body: dict[str, Any],
        requested: str,
        model: str,
        messages: Any,
        seed: int | None,
        key: Key,
        fault: str | None,
    ) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
        """(status, response body, usage billed) of the simulated model for a valid request: the one answer
        logic behind both the real-time route and batches, so a batch line equals the real-time reply."""
        try:
            text, pt, ct = fake.reply(model, messages, seed if seed is not None else 0)
        except ValueError as e:
            return 404, _error_body(str(e), "invalid_request_error", "model_not_found", "model"), None
        if fault == "garbage":
            text = random.Random(f"{self.seed}|garbage|{key}").choice(GARBAGE_REPLIES)
            ct = fake.count_tokens(text)
        text, ct, cut = self._limited(model, requested, body, text, ct)
        with self._lock:
            self._serial += 1
            rid = f"chatcmpl-loopback-{self._serial:08d}"
        message, finish = fake.shape(model, messages, text, body.get("tools"))  # tool calls, content filter ...
        finish = "length" if cut == "length" and finish == "stop" else finish
        usage = self._usage(pt, ct)
        reply = {
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
            "usage": usage,
        }
        return 200, reply, usage

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
        via: str = "chat",
        **extra: Any,
    ) -> None:
        """``status`` None means no HTTP response was sent (reset); ``usage`` is what a 200 billed; ``via`` is
        "chat" (the real-time route) or "batch" (then ``extra`` holds ``batch_id`` and ``custom_id``)."""
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
            "via": via,
            **extra,
        }
        with self._lock:
            self.requests.append(entry)

    # -- the Files and Batch APIs -----------------------------------------------------------------------
    def _batch_api(self, h: _Handler, method: str, parts: list[str], raw: bytes) -> None:
        """Serve /v1/files... and /v1/batches... (see the module docstring), behind the chat route's key check."""
        headers = {k.lower(): v for k, v in h.headers.items()}
        refused = self._auth_error(headers)
        if refused is not None:
            h._send_json(401, refused)
            return
        try:
            status, body = self._batch_dispatch(h, method, parts, raw, headers)
        except _Refused as e:
            h._send_json(e.status, e.body)
            return
        if isinstance(body, bytes):
            h._send_raw(status, body, "application/octet-stream")
        else:
            h._send_json(status, body)

    def _batch_dispatch(
        self, h: _Handler, method: str, parts: list[str], raw: bytes, headers: dict[str, str]
    ) -> tuple[int, Any]:
        kind, rest = parts[0], parts[1:]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        if kind == "files":
            if method == "POST" and not rest:
                return 200, self._upload(h.headers.get("Content-Type", ""), raw)
            if method == "GET" and not rest:
                with self._lock:
                    data = [_public_file(f) for f in self.files.values()]
                purpose = query.get("purpose", [None])[0]
                data = [f for f in data if purpose is None or f["purpose"] == purpose]
                return 200, {"object": "list", "data": data[::-1], "has_more": False}
            if len(rest) in (1, 2):
                with self._lock:
                    f = self.files.get(rest[0])
                    if f is not None and method == "DELETE" and len(rest) == 1:
                        del self.files[rest[0]]
                        return 200, {"id": rest[0], "object": "file", "deleted": True}
                if f is None:
                    raise _Refused(404, f"No such File object: {rest[0]}", "invalid_request_error", None, "id")
                if method == "GET" and len(rest) == 1:
                    return 200, _public_file(f)
                if method == "GET" and rest[1:] == ["content"]:
                    return 200, f["content"]
        elif kind == "batches":
            if method == "POST" and not rest:
                return 200, self._create_batch(raw, headers)
            if method == "GET" and not rest:
                return 200, self._list_batches(query)
            if rest:
                with self._lock:
                    b = self.batches.get(rest[0])
                    snapshot = json.loads(json.dumps(b)) if b is not None else None
                if snapshot is None:
                    raise _Refused(404, f"No such Batch object: {rest[0]}", "invalid_request_error", None, "batch_id")
                if method == "GET" and len(rest) == 1:
                    return 200, snapshot
                if method == "POST" and rest[1:] == ["cancel"]:
                    return 200, self._cancel_batch(rest[0])
        raise _Refused(404, f"no route {method} {h.path}", "invalid_request_error", "not_found")

    def _store_file(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        with self._lock:
            self._n_files += 1
            fid = f"file-loopback{self._n_files:012d}"
            obj = {
                "id": fid,
                "object": "file",
                "bytes": len(content),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
                "expires_at": None,
                "status_details": None,
            }
            self.files[fid] = {**obj, "content": content}
        return dict(obj)

    def _upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        if not content_type.lower().startswith("multipart/form-data"):
            raise _Refused(400, "POST /v1/files takes multipart/form-data with 'purpose' and 'file'.")
        fields = _multipart(content_type, raw)
        purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace")
        if purpose != "batch":
            raise _Refused(
                400, f"The equiv loopback server takes purpose 'batch' only, got {purpose!r}.", param="purpose"
            )
        if "file" not in fields:
            raise _Refused(400, "'file' is required.", param="file")
        filename, content = fields["file"]
        _batch_lines(content)  # refuse a bad file now, with the line at fault
        return self._store_file(filename or "upload.jsonl", "batch", content)

    def _create_batch(self, raw: bytes, headers: dict[str, str]) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"null")
        except ValueError as e:
            raise _Refused(400, f"invalid JSON body: {e}", code="invalid_json") from None
        if not isinstance(body, dict):
            raise _Refused(400, "invalid JSON body: not a JSON object", code="invalid_json")
        fid = body.get("input_file_id")
        with self._lock:
            f = self.files.get(fid) if isinstance(fid, str) else None
        if f is None:
            raise _Refused(400, f"Invalid 'input_file_id': no such file {fid!r}.", param="input_file_id")
        if f["purpose"] != "batch":
            raise _Refused(400, f"File {fid} has purpose {f['purpose']!r}, not 'batch'.", param="input_file_id")
        if body.get("endpoint") != "/v1/chat/completions":
            raise _Refused(400, "The equiv loopback server batches '/v1/chat/completions' only.", param="endpoint")
        if body.get("completion_window") != "24h":
            raise _Refused(400, "completion_window must be '24h'.", param="completion_window")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise _Refused(400, "metadata must be an object.", param="metadata")
        job = _Job(lines=_batch_lines(f["content"]), headers=headers)
        now = int(time.time())
        with self._lock:
            if self._stop.is_set():
                raise _Refused(503, "The server is closing.", "server_error")
            self._n_batches += 1
            bid = f"batch_loopback{self._n_batches:012d}"
            self.batches[bid] = {
                "id": bid,
                "object": "batch",
                "endpoint": "/v1/chat/completions",
                "model": None,
                "errors": None,
                "input_file_id": fid,
                "completion_window": "24h",
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": now,
                "in_progress_at": None,
                "expires_at": now + 24 * 3600,
                "finalizing_at": None,
                "completed_at": None,
                "failed_at": None,
                "expired_at": None,
                "cancelling_at": None,
                "cancelled_at": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "usage": {
                    "input_tokens": 0,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": 0,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": 0,
                },
                "metadata": metadata,
            }
            snapshot = json.loads(json.dumps(self.batches[bid]))
            self._jobs[bid] = job
            job.thread = threading.Thread(target=self._run_batch, args=(bid, job), name=f"loopback-{bid}", daemon=True)
            job.thread.start()
        if self.batch_create_reply_delay_s > 0:  # the batch exists; its creator hears of it only later
            time.sleep(self.batch_create_reply_delay_s)
        return snapshot

    def _list_batches(self, query: dict[str, list[str]]) -> dict[str, Any]:
        with self._lock:
            data = json.loads(json.dumps(list(self.batches.values())[::-1]))
        after = query.get("after", [None])[0]
        if after is not None:
            ids = [b["id"] for b in data]
            data = data[ids.index(after) + 1 :] if after in ids else []
        try:
            limit = max(1, min(100, int(query.get("limit", ["20"])[0])))
        except ValueError:
            limit = 20
        page = data[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(data) > limit,
        }

    def _cancel_batch(self, bid: str) -> dict[str, Any]:
        with self._lock:
            b = self.batches[bid]
            job = self._jobs[bid]
            if b["status"] in ("validating", "in_progress", "finalizing"):
                b["status"] = "cancelling"
                b["cancelling_at"] = int(time.time())
                job.cancel = True
            elif b["status"] not in ("cancelling", "cancelled"):
                raise _Refused(400, f"Cannot cancel a batch with status '{b['status']}'.", param="batch_id")
            snapshot = json.loads(json.dumps(b))
        job.wake.set()
        return snapshot

    def _pause(self, job: _Job, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the batch was cancelled or the server is closing."""
        if seconds > 0 and not (job.cancel or self._stop.is_set()):
            job.wake.wait(seconds)
        return job.cancel or self._stop.is_set()

    def _advance(self, bid: str, job: _Job, status: str, **fields: Any) -> bool:
        """Move a batch on to ``status`` unless a cancel came first (then False)."""
        with self._lock:
            if job.cancel:
                return False
            b = self.batches[bid]
            b.update(status=status, **{f"{status}_at": int(time.time())}, **fields)
            return True

    def _run_batch(self, bid: str, job: _Job) -> None:
        """The worker: validating (1/5 of ``batch_delay_s``), in_progress (answers spread over 7/10),
        finalizing (1/10), completed; or expired / cancelled / failed."""
        d = self.batch_delay_s
        try:
            if self._pause(job, 0.2 * d):
                return self._finish(bid, job, "cancelled")
            n = len(job.lines)
            models = list(dict.fromkeys(str(line["body"].get("model", "")) for line in job.lines))
            if self.batch_single_model and len(models) > 1:
                first_other = next(i for i, line in enumerate(job.lines, 1) if line["body"].get("model") != models[0])
                errors = {
                    "object": "list",
                    "data": [
                        {
                            "code": "model_mismatch",
                            "message": f"A batch input file must use one model; it mixes {', '.join(models)}.",
                            "param": "body.model",
                            "line": first_other,
                        }
                    ],
                }
                counts = {"total": n, "completed": 0, "failed": 0}
                if not self._advance(bid, job, "failed", errors=errors, request_counts=counts):
                    return self._finish(bid, job, "cancelled")
                return None
            if not self._advance(bid, job, "in_progress", model=models[0] if len(models) == 1 else None):
                return self._finish(bid, job, "cancelled")
            with self._lock:
                self.batches[bid]["request_counts"]["total"] = n
            expire = self.batch_expire
            share = 0.5 if expire is True else float(expire or 0.0)
            unanswered = min(n, max(1, round(n * share))) if share > 0 else 0
            step = 0.7 * d / max(n, 1)
            for line in job.lines[: n - unanswered]:
                self._run_line(bid, job, line)
                if self._pause(job, step):
                    break
            if self._stop.is_set():
                return None
            if job.cancel:
                return self._finish(bid, job, "cancelled")
            if unanswered:
                self._pause(job, step * unanswered)
                return self._finish(bid, job, "cancelled" if job.cancel else "expired")
            if not self._advance(bid, job, "finalizing") or self._pause(job, 0.1 * d):
                return self._finish(bid, job, "cancelled")
            return self._finish(bid, job, "completed")
        except Exception as e:  # a bug here must show in the batch, not vanish in a thread
            with self._lock:
                self.batches[bid].update(
                    status="failed",
                    failed_at=int(time.time()),
                    errors={"object": "list", "data": [{"code": "server_error", "message": repr(e), "line": None}]},
                )
            return None

    def _run_line(self, bid: str, job: _Job, line: dict[str, Any]) -> None:
        cid = str(line["custom_id"])
        status, reply, usage = self._batch_call(bid, job, cid, line["body"])
        digest = hashlib.sha256(f"{bid}|{cid}".encode()).hexdigest()
        out = {
            "id": f"batch_req_{digest[:24]}",
            "custom_id": cid,
            "response": {"status_code": status, "request_id": f"req_{digest[24:48]}", "body": reply},
            "error": None,
        }
        with self._lock:
            job.done.add(cid)
            (job.outputs if status == 200 else job.errors).append(json.dumps(out))
            b = self.batches[bid]
            b["request_counts"]["completed" if status == 200 else "failed"] += 1
            if usage is not None:
                u = b["usage"]
                u["input_tokens"] += usage["prompt_tokens"]
                u["output_tokens"] += usage["completion_tokens"]
                reasoning = usage.get("completion_tokens_details", {}).get("reasoning_tokens", 0)
                u["output_tokens_details"]["reasoning_tokens"] += reasoning
                u["total_tokens"] += usage["total_tokens"]

    def _batch_fails(self, cid: str, requested: str, model: str) -> bool:
        """Whether ``batch_fail_share`` / ``batch_fail_models`` make this request fail (500), by its custom_id."""
        models = self.batch_fail_models
        share = self.batch_fail_share if self.batch_fail_share is not None else (1.0 if models else 0.0)
        if share <= 0 or (models is not None and requested not in models and model not in models):
            return False
        return random.Random(f"{self.seed}|batch_fail|{cid}").random() < share

    def _batch_call(
        self, bid: str, job: _Job, cid: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
        """One request of a batch, answered and recorded (``via`` "batch") as the chat route would, without
        its latency and transport faults (the batch knobs stand in for those)."""
        requested = str(body.get("model", ""))
        messages = body.get("messages")
        seed = _seed_of(body)
        mhash = messages_hash(messages)
        invalid = _invalid_chat(body)
        if invalid is not None or not isinstance(messages, list):
            status, error, fault = invalid or (400, _error_body("bad request", "invalid_request_error", None), "")
            self._record(body, mhash, seed, status, fault, job.headers, via="batch", batch_id=bid, custom_id=cid)
            return status, error, None
        model = self.aliases.get(requested, requested)
        if self._batch_fails(cid, requested, model):
            self._record(body, mhash, seed, 500, "batch_fail", job.headers, via="batch", batch_id=bid, custom_id=cid)
            error = _error_body(
                "The server had an error while processing your request (simulated).", "server_error", None
            )
            return 500, error, None
        key: Key = (requested, mhash, seed)
        status, reply, usage = self._generate(body, requested, model, messages, seed, key, None)
        self._record(
            body,
            mhash,
            seed,
            status,
            None if status == 200 else "unknown_model",
            job.headers,
            usage=usage,
            via="batch",
            batch_id=bid,
            custom_id=cid,
        )
        if status == 200:
            with self._lock:
                self._successes[key] += 1
        return status, reply, usage

    def _finish(self, bid: str, job: _Job, status: str) -> None:
        """Write the output and error files and end the batch as ``status`` (completed, expired or cancelled).
        Requests never run are error lines with code batch_expired / batch_cancelled, as OpenAI writes them."""
        if status == "cancelled" and self._stop.wait(0.1 * self.batch_delay_s):
            return
        if self._stop.is_set():
            return
        missing = {
            "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
            "cancelled": ("batch_cancelled", "This request was not executed: the batch was cancelled."),
        }.get(status)
        with self._lock:
            outputs, errors = list(job.outputs), list(job.errors)
            todo = [line for line in job.lines if line["custom_id"] not in job.done]
        if missing is not None:
            for line in todo:
                digest = hashlib.sha256(f"{bid}|{line['custom_id']}".encode()).hexdigest()
                error = {"code": missing[0], "message": missing[1]}
                errors.append(
                    json.dumps(
                        {
                            "id": f"batch_req_{digest[:24]}",
                            "custom_id": line["custom_id"],
                            "response": None,
                            "error": error,
                        }
                    )
                )
        if self.batch_shuffle:  # OpenAI does not keep input order: match lines by custom_id
            random.Random(f"{self.seed}|{bid}|out").shuffle(outputs)
            random.Random(f"{self.seed}|{bid}|err").shuffle(errors)
        out_id = self._store_file(f"{bid}_output.jsonl", "batch_output", _jsonl(outputs))["id"] if outputs else None
        err_id = self._store_file(f"{bid}_error.jsonl", "batch_output", _jsonl(errors))["id"] if errors else None
        with self._lock:
            if job.cancel:
                status = "cancelled"
            b = self.batches[bid]
            b.update(status=status, output_file_id=out_id, error_file_id=err_id, **{f"{status}_at": int(time.time())})
            b["request_counts"].update(total=len(job.lines), completed=len(outputs), failed=len(errors))


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
