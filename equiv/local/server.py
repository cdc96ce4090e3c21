"""Start, route to and stop local model servers (llama.cpp via xllamacpp) for one run.

`serving(settings)` is the context manager a run lives in: it checks every `local/<name>` model's
weights up front (assembling bundled ones once), starts each model's server on 127.0.0.1 on a free
port the first time a call needs it (a finished run that is only re-reported loads nothing), and
stops every server when the run ends, on errors and on Ctrl-C alike.

Two models on a 2-core machine: running both at once makes their threads fight for the cores (llama.cpp
threads spin at barriers, so oversubscription costs far more than half). So local servers take turns:
calls to one server overlap freely (its slots batch them), and a call to another server waits until
the current server's calls have drained, then gets a turn of its own. One server per GGUF file:
`local/a` and `local/b` pointing at the same weights share it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from equiv.config import Settings, resolve_path
from equiv.errors import InputError
from equiv.local import weights
from equiv.local.weights import INSTALL_HINT, LOCAL_PREFIX, is_local

HOST = "127.0.0.1"
BACKEND_ENV = "EQUIV_LOCAL_BACKEND"  # "llamacpp" (default) or "fake" (tests: simulated models, no weights)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return max(1, int(raw)) if raw else default
    except ValueError:
        raise InputError(f"environment variable {name}={raw!r} is not a whole number") from None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ServerOptions:
    """How each local server runs. Environment overrides: EQUIV_LOCAL_CTX / _PARALLEL / _THREADS."""

    ctx: int = 4096  # context tokens per slot
    parallel: int = 2  # slots: concurrent requests batched together
    threads: int = field(default_factory=cpu_count)
    backend: str = "llamacpp"
    startup_timeout_s: float = 300.0
    verbosity: int = 2

    @classmethod
    def from_env(cls) -> ServerOptions:
        backend = os.environ.get(BACKEND_ENV) or "llamacpp"
        if backend not in ("llamacpp", "fake"):
            raise InputError(f"{BACKEND_ENV}={backend!r}: must be 'llamacpp' or 'fake'")
        return cls(
            ctx=_env_int("EQUIV_LOCAL_CTX", 4096),
            parallel=_env_int("EQUIV_LOCAL_PARALLEL", 2),
            threads=_env_int("EQUIV_LOCAL_THREADS", cpu_count()),
            backend=backend,
        )


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def runtime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("xllamacpp") is not None


class PortInUse(InputError):
    """The port a local server was asked to use is taken."""


class LocalServer:
    """One child process serving one GGUF on HOST:port (see equiv.local.serve for the protocol)."""

    def __init__(self, label: str, gguf: Path, options: ServerOptions) -> None:
        self.label = label  # the model name(s) it serves, for messages
        self.gguf = gguf
        self.options = options
        self.proc: subprocess.Popen[str] | None = None
        self.port: int | None = None
        self.log_path: Path | None = None
        self._log: IO[str] | None = None
        self.started_s: float | None = None
        self.ready = False  # loaded and healthy: only then may calls be routed to it

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{self.label}: server not started")
        return f"http://{HOST}:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + "/v1"

    def start(self, port: int | None = None) -> str:
        """Start and wait until healthy. port=None: a free port, retried on a clash; else exactly that port."""
        attempts = 1 if port is not None else 3
        for attempt in range(attempts):
            try:
                return self._start_once(port if port is not None else free_port())
            except PortInUse:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self, port: int) -> str:
        if self.options.backend == "llamacpp" and not runtime_available():
            raise InputError(f"{self.label}: the local model runtime (xllamacpp) is not installed: run {INSTALL_HINT}")
        fd, log_name = tempfile.mkstemp(prefix="equiv-local-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log_name)
        self._log = open(self.log_path, "w", encoding="utf-8")
        o = self.options
        cmd = [
            sys.executable,
            "-m",
            "equiv.local.serve",
            "--gguf",
            str(self.gguf),
            "--host",
            HOST,
            "--port",
            str(port),
            "--ctx",
            str(o.ctx),
            "--parallel",
            str(o.parallel),
            "--threads",
            str(o.threads),
            "--verbosity",
            str(o.verbosity),
            "--backend",
            o.backend,
        ]
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, start_new_session=False
        )
        self.port = port
        line = self._first_line(o.startup_timeout_s)
        if line.startswith("EQUIV-READY"):
            self._wait_healthy(t0 + o.startup_timeout_s)
            self.started_s = time.monotonic() - t0
            self.ready = True
            return self.api_base
        self.stop(keep_log=True)
        if line.startswith("EQUIV-ERROR"):
            _, kind, *rest = line.split(" ", 2)
            message = rest[0] if rest else kind
            if kind == "port-in-use":
                raise PortInUse(f"{self.label}: cannot serve on {HOST}:{port}: {message}")
            if kind == "missing-runtime":
                raise InputError(f"{self.label}: {message}: run {INSTALL_HINT}")
            raise InputError(f"{self.label}: the local server failed to start: {message} (log: {self.log_path})")
        raise InputError(
            f"{self.label}: the local server did not start within {o.startup_timeout_s:.0f} s "
            f"({line or 'no output'}; log: {self.log_path})"
        )

    def _first_line(self, timeout_s: float) -> str:
        """The child's status line, or '' if it exits or times out first (read in a thread: pipes don't time out)."""
        assert self.proc is not None and self.proc.stdout is not None
        out: list[str] = []
        stdout = self.proc.stdout
        reader = threading.Thread(target=lambda: out.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        return out[0].strip() if out else ""

    def _wait_healthy(self, deadline: float) -> None:
        while True:
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(keep_log=True)
                raise InputError(
                    f"{self.label}: the local server on port {self.port} never became healthy (log: {self.log_path})"
                )
            time.sleep(0.2)

    def running(self) -> bool:
        return self.ready and self.proc is not None and self.proc.poll() is None

    def stop(self, keep_log: bool = False) -> None:
        """Close its stdin (it exits by itself), then terminate, then kill. Idempotent."""
        proc, self.proc = self.proc, None
        self.ready = False
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.close()
                proc.terminate()
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            except OSError:
                pass
            if proc.stdout:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.log_path is not None and not keep_log:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None


class LocalModels:
    """The local models of one run: weights per name, servers started on demand, and the CPU turns."""

    def __init__(self, ggufs: dict[str, Path], options: ServerOptions | None = None) -> None:
        self.ggufs = ggufs
        self.options = options or ServerOptions.from_env()
        self.servers: dict[Path, LocalServer] = {}
        for path in ggufs.values():
            key = path.resolve()
            if key not in self.servers:
                names = sorted(n for n, p in ggufs.items() if p.resolve() == key)
                self.servers[key] = LocalServer(" / ".join(names), path, self.options)
        self._start_lock = threading.Lock()
        self._closed = False  # set by close(): no server starts after it
        self._cond: asyncio.Condition | None = None
        self._owner: Path | None = None
        self._inside = 0
        self._waiting: Counter[Path] = Counter()
        self.turns = 0  # how many times the CPU changed hands (for diagnostics)

    def server(self, name: str) -> LocalServer:
        if name not in self.ggufs:
            raise InputError(f"{name}: not a local model of this run")
        return self.servers[self.ggufs[name].resolve()]

    def ensure_started(self, name: str) -> str:
        """The model's api_base, starting its server first if needed (thread-safe)."""
        srv = self.server(name)
        with self._start_lock:
            if self._closed:  # a start that was still waiting when the run ended (Ctrl-C, an error)
                raise InputError(f"{srv.label}: the local models were already stopped")
            if not srv.running():
                srv.start()
            return srv.api_base

    @asynccontextmanager
    async def turn(self, name: str) -> AsyncIterator[str]:
        """Hold a turn on the CPU for one call to `name`'s server; yields its api_base."""
        srv = self.server(name)
        if not srv.running():
            await asyncio.to_thread(self.ensure_started, name)
        key = self.ggufs[name].resolve()
        if len(self.servers) == 1:
            yield srv.api_base
            return
        if self._cond is None:
            self._cond = asyncio.Condition()
        cond = self._cond
        async with cond:
            self._waiting[key] += 1
            try:
                # enter an empty room, or join the current server's calls unless another server is waiting
                await cond.wait_for(
                    lambda: (
                        self._inside == 0
                        or (self._owner == key and not any(n for k, n in self._waiting.items() if k != key))
                    )
                )
            finally:
                self._waiting[key] -= 1
            if self._owner != key:
                self.turns += 1
            self._owner = key
            self._inside += 1
        try:
            yield srv.api_base
        finally:
            async with cond:
                self._inside -= 1
                cond.notify_all()

    def close(self) -> None:
        """Stop every server. A start in progress in a worker thread (a call's first turn) is waited for
        under the start lock and then stopped too, and no server starts afterwards: none outlives the run."""
        with self._start_lock:
            self._closed = True
            for srv in self.servers.values():
                srv.stop()

    def describe(self) -> dict[str, dict[str, object]]:
        """What run.json records about each local model: its weights and how it was served."""
        out: dict[str, dict[str, object]] = {}
        for name, path in sorted(self.ggufs.items()):
            b = weights.BUNDLED.get(name.removeprefix(LOCAL_PREFIX))
            out[name] = {
                "gguf": str(path),
                "sha256": b.sha256 if b and path.name == b.filename else None,
                "backend": self.options.backend,
                "ctx_per_slot": self.options.ctx,
                "parallel": self.options.parallel,
                "threads": self.options.threads,
            }
        return out


def current() -> LocalModels | None:
    """The local models of the run in progress, if any."""
    return _ACTIVE


def local_model_names(settings: Settings, names: list[str | None]) -> list[str]:
    return sorted({n for n in names if n and is_local(n)})


def gguf_for(name: str, settings: Settings) -> Path:
    """The weights of one local model: a GGUF registered in config, or a bundled model (assembled once)."""
    ms = settings.model_settings(name)
    if ms.gguf:
        return weights.check_gguf(resolve_path(settings, ms.gguf), f'models."{name}".gguf')
    bundled = weights.BUNDLED.get(name.removeprefix(LOCAL_PREFIX))
    if bundled is None:
        known = ", ".join(LOCAL_PREFIX + n for n in weights.BUNDLED)
        raise InputError(
            f"unknown local model '{name}': the bundled ones are {known}; to serve your own GGUF add to the config\n"
            f'  [models."{name}"]\n  gguf = "/path/to/model.gguf"'
        )
    if os.environ.get(BACKEND_ENV) == "fake":
        raise InputError(f"{name}: {BACKEND_ENV}=fake serves only GGUF files registered in the config")
    return weights.ensure_bundled(bundled)


_ACTIVE: LocalModels | None = None


def active() -> LocalModels:
    if _ACTIVE is None:
        raise InputError("local/ models are served only inside equiv.local.serving(settings) (equiv compare does it)")
    return _ACTIVE


@contextmanager
def serving(settings: Settings, names: list[str | None] | None = None) -> Iterator[LocalModels | None]:
    """The local models among `names` (default: baseline, candidate, judge) are served for the duration."""
    global _ACTIVE
    wanted = local_model_names(
        settings,
        names if names is not None else [settings.baseline, *settings.candidate_models, *settings.all_judges()],
    )
    for n, ms in settings.models.items():
        if ms.gguf and not is_local(n):
            raise InputError(
                f'models."{n}".gguf: only local/<name> models are served from a GGUF; '
                f'rename the model to "local/{n.split("/")[-1]}"'
            )
    if not wanted:
        yield None
        return
    if _ACTIVE is not None:  # nested (e.g. qualify runs several comparisons): reuse the outer servers
        missing = [n for n in wanted if n not in _ACTIVE.ggufs]
        if not missing:
            yield _ACTIVE
            return
    options = ServerOptions.from_env()
    if options.backend == "llamacpp" and not runtime_available():
        raise InputError(
            f"{', '.join(wanted)}: the local model runtime (xllamacpp) is not installed: run {INSTALL_HINT}"
        )
    models = LocalModels({n: gguf_for(n, settings) for n in wanted}, options)
    previous, _ACTIVE = _ACTIVE, models
    try:
        yield models
    finally:
        _ACTIVE = previous
        models.close()
