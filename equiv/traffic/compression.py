"""Compressed traffic files: ``.gz`` (stdlib ``gzip``) and ``.zst`` (the ``zstandard`` package).  [I/O]

Both are decompressed as a stream, in bounded chunks, whatever the file's size: ``decompressing`` wraps a
binary file object (a local file or an object in a bucket) in a reader with ``readline``/``read``, and
closing it closes the file under it.

- gzip: members written one after the other (``cat a.gz b.gz``) are read as one stream, as ``gzip``
  does; corrupt or truncated data raises ``gzip.BadGzipFile``/``EOFError``/``zlib.error``, which
  ``fields._io_error`` turns into "the gzip data is corrupt or truncated".
- zstd: every frame is read (``zstd`` and ``pzstd`` write several; a log shipper appends one per flush),
  and a file that ends inside a frame is an error (``CorruptData``), never silently shorter: the
  ``zstandard`` reader's own stream would just stop there. Input is fed in pieces sized to the ratio seen
  so far (64 B to 64 KiB, aiming at ``_TARGET_OUT`` decompressed bytes a piece), so a file of repeated
  lines, which zstd shrinks a thousandfold, is not decompressed whole into memory at once.
"""

from __future__ import annotations

import gzip
import io
from typing import IO, Any, cast

from equiv.errors import InputError

COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}  # suffix -> codec
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
_MIN_FEED, _MAX_FEED = 64, 1 << 16  # compressed bytes fed to the decompressor at a time
_TARGET_OUT = 1 << 18  # decompressed bytes aimed at per feed


class CorruptData(Exception):
    """Compressed data that cannot be decompressed (corrupt, truncated, or not in that codec at all)."""

    def __init__(self, codec: str, detail: str) -> None:
        super().__init__(detail)
        self.codec, self.detail = codec, detail

    def message(self, where: str) -> str:
        return (
            f"{where}: the {self.codec} data is corrupt or truncated ({self.detail}) "
            "— re-compress or re-export the file"
        )


def compressed_by(head: bytes) -> str | None:
    """The codec whose magic number ``head`` starts with, if any (to name a file's real type)."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return None


def decompressing(raw: IO[bytes], codec: str | None) -> IO[bytes]:
    """``raw`` read through ``codec`` (None: as it is); closing the result closes ``raw``."""
    if codec is None:
        return raw
    if codec == "gzip":
        return cast(IO[bytes], _OwningGzipFile(raw))
    if codec == "zstd":
        return cast(IO[bytes], io.BufferedReader(_ZstdReader(raw), buffer_size=1 << 16))
    raise ValueError(f"unknown codec {codec!r}")


class _OwningGzipFile(gzip.GzipFile):
    """A ``GzipFile`` over a file object that it closes too (``GzipFile`` leaves a given fileobj open)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._owned = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._owned.close()


class _ZstdReader(io.RawIOBase):
    """All the zstd frames of ``raw``, decompressed as they are read; a frame cut short is ``CorruptData``."""

    def __init__(self, raw: IO[bytes]) -> None:
        try:
            import zstandard
        except ImportError:  # a dependency of equiv; only a broken install lacks it
            raw.close()
            raise InputError("reading .zst files needs the zstandard package — pip install zstandard") from None
        self._zstd: Any = zstandard
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._frame: Any = None  # the current frame's decompressor
        self._left = b""  # input read but not yet fed
        self._feed = _MIN_FEED
        self._out = memoryview(b"")  # decompressed bytes not yet handed out
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out:
            if self._done:
                return 0
            self._fill()
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]  # a view: no copy of the rest
        return n

    def _fill(self) -> None:
        if len(self._left) < self._feed:
            self._left += self._raw.read(max(_MAX_FEED, self._feed))
        chunk, self._left = self._left[: self._feed], self._left[self._feed :]
        if not chunk:
            if self._frame is not None and not self._frame.eof:
                raise CorruptData("zstd", "the file ends inside a frame")
            self._done = True
            return
        if self._frame is None or self._frame.eof:
            self._frame = self._dctx.decompressobj()
        try:
            out = self._frame.decompress(chunk)
        except self._zstd.ZstdError as e:
            raise CorruptData("zstd", str(e)) from None
        if self._frame.eof:
            self._left = self._frame.unused_data + self._left
        self._out = memoryview(out)
        ratio = max(1.0, len(out) / len(chunk))  # no output yet (a frame header): grow by doubling only
        self._feed = max(_MIN_FEED, min(_MAX_FEED, 2 * len(chunk), int(_TARGET_OUT / ratio)))

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()
