"""The child process that hosts one local model: `python -m equiv.local.serve --gguf PATH --port N ...`.

Why a child process and not xllamacpp in equiv's own process: stopping it is a plain terminate (memory
and threads are surely released, even if the native server hangs), a crash of the native code cannot
take the run with it, and a parent that dies (even by SIGKILL) closes our stdin, which ends us too.

Protocol with equiv.local.server: one line on stdout, `EQUIV-READY <base_url>` once the model is
loaded and the port is bound, or `EQUIV-ERROR <kind> <message>` (kind: missing-runtime, port-in-use,
load-failed) and exit code 3. Native logs go to stderr (the parent keeps them in a log file).

`--backend fake` serves equiv's simulated models (equiv/llm/fake.py) over the same protocol and HTTP
API with no weights and no xllamacpp, so the lifecycle can be tested in CI. The fake "GGUF" names its
simulated model after the magic: b"GGUF fake:skill-90".
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

READY = "EQUIV-READY"
ERROR = "EQUIV-ERROR"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _fail(kind: str, message: str) -> None:
    _say(f"{ERROR} {kind} {message}")
    sys.exit(3)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _serve_llamacpp(args: argparse.Namespace) -> Any:
    try:
        import xllamacpp as xlc
    except ImportError:
        _fail("missing-runtime", "the xllamacpp package is not installed")
    p = xlc.CommonParams()
    p.model.path = args.gguf
    p.n_parallel = args.parallel
    p.n_ctx = args.ctx * args.parallel  # the context is shared by the slots: each gets --ctx
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    p.port = args.port
    p.hostnames = [args.host]
    p.verbosity = args.verbosity
    p.n_threads_http = max(2, args.parallel + 1)
    try:
        return xlc.Server(p)
    except RuntimeError:
        # the native server logs why to stderr; tell the parent the likely cause
        if not _port_free(args.host, args.port):
            _fail("port-in-use", f"port {args.port} on {args.host} is already in use")
        _fail("load-failed", f"llama.cpp could not load {args.gguf}")


class _FakeHandler(BaseHTTPRequestHandler):
    model = "skill-90"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _json(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/health", "/v1/health"):
            self._json(200, {"status": "ok"})
        elif self.path.rstrip("/") in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        from equiv.llm import fake

        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        seed = body.get("seed")
        messages = body.get("messages") or []
        text, pt, ct = fake.reply(self.model, messages, seed if isinstance(seed, int) else 0)
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        if fake.is_judge(self.model) and last.get("role") == "assistant" and body.get("grammar"):
            # as llama.cpp does with a prefilled reply and a grammar for the verdict word: the prefill
            # comes back with the one word the model wrote after it
            try:
                winner = json.loads(text).get("winner")
            except ValueError:
                winner = None  # a reply that is no verdict object stays as it was (and fails to parse)
            if isinstance(winner, str):
                text, ct = str(last.get("content") or "") + winner, 1
        choice: dict[str, Any] = {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": text},
        }
        lp = fake.judge_logprobs(self.model, messages) if body.get("logprobs") else None
        if lp:  # as llama.cpp reports them: the first decoded token (the verdict word) and its alternatives
            top = sorted(lp.items(), key=lambda kv: -kv[1])
            choice["logprobs"] = {
                "content": [
                    {
                        "token": top[0][0],
                        "logprob": top[0][1],
                        "top_logprobs": [{"token": t, "logprob": v} for t, v in top],
                    }
                ]
            }
        self._json(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": self.model,
                "choices": [choice],
                "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
            },
        )


def _serve_fake(args: argparse.Namespace) -> Any:
    with open(args.gguf, "rb") as fh:
        head = fh.read(200)
    if not head.startswith(b"GGUF fake:"):
        _fail("load-failed", f"{args.gguf} is not a fake model file (b'GGUF fake:<model>')")
    handler = type("Handler", (_FakeHandler,), {"model": head[len(b"GGUF fake:") :].split()[0].decode()})
    try:
        srv = ThreadingHTTPServer((args.host, args.port), handler)
    except OSError:
        _fail("port-in-use", f"port {args.port} on {args.host} is already in use")
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="serve one GGUF model on 127.0.0.1 for equiv (internal)")
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verbosity", type=int, default=2)
    ap.add_argument("--backend", choices=("llamacpp", "fake"), default="llamacpp")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = _serve_fake(args) if args.backend == "fake" else _serve_llamacpp(args)
    _say(f"{READY} http://{args.host}:{args.port}")
    try:
        sys.stdin.read()  # returns at EOF: the parent closed our stdin or died
    except KeyboardInterrupt:
        pass
    del server


if __name__ == "__main__":
    main()
