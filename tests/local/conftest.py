"""Local-model tests: the lifecycle runs against the `fake` backend of equiv.local.serve (no weights, no xllamacpp)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from equiv.local import weights


def fake_gguf(folder: Path, model: str, name: str | None = None) -> Path:
    """A stand-in GGUF for the fake backend: the magic, then the simulated model it serves."""
    path = folder / (name or f"{model}.gguf")
    path.write_bytes(b"GGUF fake:" + model.encode() + b"\n")
    return path


def bundled_installed(name: str) -> bool:
    b = weights.BUNDLED[name]
    return importlib.util.find_spec("xllamacpp") is not None and all(
        importlib.util.find_spec(f"{b.package}{i}") is not None for i in range(1, b.parts + 1)
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): read its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("EQUIV_LOCAL_BACKEND", "fake")
    monkeypatch.setenv("EQUIV_MODEL_CACHE", str(tmp_path / "cache"))
    return tmp_path
