"""Where traffic is: a path, a glob, a folder, ``s3://`` / ``gs://`` objects, or several of them.  [I/O]

``resolve`` turns what the user gave into the files to read, checked now (so a wrong path is heard of
before anything else) and in one canonical order; ``digest`` is the run key's share of the traffic.

- **A file**: read as it is named (``kind_of``: ``.jsonl``, ``.ndjson``, ``.json``, ``.csv``, each also
  ``.gz`` / ``.zst``, and ``.parquet``).
- **A glob** (``*``, ``?``, ``[...]``, ``**`` for any depth): expanded by equiv, not the shell, so quote
  it; a glob that matches nothing is an error ("no file matches"), and a matched file whose type equiv
  cannot read is an error too (the pattern named it), unless it is hidden (``.name``, ``_SUCCESS``). A
  matched folder is read as a folder. A path that exists as written is never taken as a
  glob (``logs/[2025].jsonl``).
- **A folder**: every traffic file under it, at any depth, by name; other files (``README.md``,
  ``_SUCCESS``, ``.crc`` files), hidden ones (``.name``, ``_name``) and ``datasets`` folders inside it are
  left out. A folder written by ``datasets``' ``save_to_disk`` (it holds ``dataset_info.json``,
  ``state.json`` or ``dataset_dict.json``) is read as one dataset, as before (``tables._hf_folder_rows``),
  and must be given alone.
- **Objects in a bucket**: ``s3://bucket/key``, ``gs://`` (or ``gcs://``) through ``fsspec`` (``s3fs``,
  ``gcsfs``: the optional extra ``pip install 'equiv[cloud]'``); a key, a glob over keys, or a prefix
  (read as a folder). Credentials, region and endpoint come from the provider's usual settings
  (``AWS_*`` variables and ``~/.aws`` for S3, including ``AWS_ENDPOINT_URL`` for an S3-compatible
  server; Google's application default credentials for GCS); equiv never takes a key as an argument.
  ``Path("s3://b/k")`` collapses the double slash (``s3:/b/k``): that spelling is read as the URL.
- **Several** (a list): each resolved as above; a file named twice is read once.
- A ``postgresql://`` URL is not a path: ``postgres_url`` recognises it (``Path()``'s spelling too) and
  ``equiv.traffic.postgres`` reads it.

Order: files are read sorted by their full path (absolute local path, or URL), so the records come in
the same order however the glob or the list was written.

The digest (``digest``) keys the run directory: the same traffic content resumes the same run, and any
change of content starts a new one. One file: sha256 of its bytes (compressed bytes for ``.gz``/``.zst``;
for an object in a bucket, the object's bytes, streamed: an ETag is not a content hash for multipart
uploads and differs between providers, and two copies of the same file must get the same key). Several
files: sha256 over the sorted list of (name relative to the files' deepest common folder, sha256 of
the file), so renaming or moving the whole set, or writing the glob another way, changes nothing, and
renaming, adding, removing or changing one file changes the key. A ``datasets`` folder: sha256 over its
files' relative names and bytes (as before). The bytes are read for the key and again for the records
(as for a local file, an object is fetched twice).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union, cast

from equiv.errors import InputError
from equiv.traffic.compression import COMPRESSIONS

TrafficPath = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]]

_URL = re.compile(r"^(s3|gs|gcs)://", re.IGNORECASE)
_MANGLED_URL = re.compile(r"^(s3|gs|gcs):/(?=[^/])", re.IGNORECASE)  # what Path() leaves of s3://
_PG_MANGLED = re.compile(r"^postgres(ql)?:/(?=[^/])", re.IGNORECASE)
_MAGIC = re.compile(r"[*?[]")
HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_CLOUD_EXTRA = "pip install 'equiv[cloud]'"

# the file layouts, by suffix; the text ones may also be compressed (``compression.COMPRESSIONS``)
LAYOUTS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_TEXT_LAYOUTS = (".jsonl", ".ndjson", ".json", ".csv")
SUPPORTED_SUFFIXES = (
    *LAYOUTS,
    *(s + c for c in COMPRESSIONS for s in _TEXT_LAYOUTS),
)
KINDS_TEXT = ".jsonl, .ndjson, .json, .csv or .parquet; the first four also .gz or .zst"


def kind_of(name: str) -> tuple[str, str | None] | None:
    """``(layout, codec)`` of a file name (``("jsonl", "zstd")`` for ``a.jsonl.zst``), or None."""
    low = name.lower()
    codec = None
    for suffix, c in COMPRESSIONS.items():
        if low.endswith(suffix):
            low, codec = low[: -len(suffix)], c
            break
    for suffix, layout in LAYOUTS.items():
        if low.endswith(suffix) and not (codec and layout == "parquet"):
            return layout, codec
    return None


def _check_kind(name: str, display: str) -> None:
    """A file named explicitly (a path, or matched by a glob) must be one equiv reads."""
    if kind_of(name) is None:
        suffixes = "".join(Path(name).suffixes[-2:]) or "(no extension)"
        raise InputError(f"{display}: unsupported file type {suffixes!r} — use one of {KINDS_TEXT}")


@dataclass(frozen=True)
class TrafficFile:
    """One file to read: how messages name it, where it is (a local path, or a path in an fsspec filesystem)."""

    display: str
    key: str  # canonical and unique: the absolute local path, or the URL
    local: Path | None = None
    fs: Any = field(default=None, compare=False)
    remote: str = ""  # the path inside ``fs`` ("bucket/key")

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def open(self, block_size: int | None = None) -> IO[bytes]:
        """The file's bytes (raises OSError / FileNotFoundError / PermissionError like ``open``)."""
        if self.local is not None:
            return self.local.open("rb")
        try:
            kw = {} if block_size is None else {"block_size": block_size}
            # fsspec's files have no readline(limit): buffered as a local file is
            return cast(IO[bytes], io.BufferedReader(self.fs.open(self.remote, "rb", **kw), buffer_size=1 << 16))
        except OSError:
            raise
        except Exception as e:  # a cloud client's own errors (credentials, network): one clear OSError
            raise OSError(f"{type(e).__name__}: {e}") from None


@dataclass(frozen=True)
class Resolved:
    """What ``resolve`` found: the files to read in order, or one ``datasets`` folder."""

    display: str
    files: list[TrafficFile]
    hf_folder: Path | None = None


def traffic_display(path: TrafficPath) -> str:
    """How messages name the traffic as a whole: the path or pattern as given; several joined by commas; a
    ``postgresql://`` URL without its password."""
    if isinstance(path, (str, os.PathLike)):
        url = postgres_url(path)
        if url is not None:
            from equiv.traffic.postgres import public_url

            return public_url(url)
        return _spec_text(path)
    return ", ".join(_spec_text(p) for p in path)


def postgres_url(path: TrafficPath, display: str | None = None) -> str | None:
    """The ``postgresql://`` URL ``path`` is (``equiv.traffic.postgres``), if it is one: read by SQL, not as
    files. ``Path()`` collapses the URL's ``//``: the URL is then ``display`` if that is it, else repaired."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    from equiv.traffic.postgres import is_postgres_url

    text = os.fspath(path)
    if is_postgres_url(text):
        return text
    if _PG_MANGLED.match(text):
        if display is not None and is_postgres_url(display):
            return display
        return _PG_MANGLED.sub(lambda m: m.group(0) + "/", text, count=1)
    return None


def resolve(path: TrafficPath) -> Resolved:
    """The files ``path`` names, checked now (InputError: not found, no match, unsupported type) and sorted."""
    specs = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not specs:
        raise InputError("no traffic path given — name a traffic file, a folder, a glob or an s3:// / gs:// URL")
    display = traffic_display(path)
    found: dict[str, TrafficFile] = {}
    for spec in specs:
        text = _spec_text(spec)
        if _URL.match(text):
            files = _resolve_remote(text)
        else:
            local = _resolve_local(text)
            if isinstance(local, Path):
                if len(specs) > 1:
                    raise InputError(
                        f"{text}: is a folder written by datasets' save_to_disk — give it alone, not with other paths"
                    )
                return Resolved(display, [], hf_folder=local)
            files = local
        for f in files:
            found.setdefault(f.key, f)
    return Resolved(display, [found[k] for k in sorted(found)])


def digest(path: TrafficPath) -> str:
    """The traffic's content hash (sha256, hex): see the module's docstring."""
    display = traffic_display(path)
    try:
        r = resolve(path)
        if r.hf_folder is not None:
            return _folder_digest(r.hf_folder)
        if len(r.files) == 1:
            return _file_sha256(r.files[0]).hexdigest()
        names = _relative_names(r.files)
        h = hashlib.sha256()
        for name, f in sorted(zip(names, r.files, strict=True), key=lambda x: x[0]):
            h.update(name.encode("utf-8", "surrogateescape") + b"\0" + _file_sha256(f).hexdigest().encode() + b"\n")
        return h.hexdigest()
    except FileNotFoundError:
        raise InputError(f"{display}: file not found — check the path") from None
    except OSError as e:
        raise InputError(f"{display}: cannot be read ({e.strerror or e}) — check the path and permissions") from None


# ------------------------------------------------------------------------------------ local


def _spec_text(spec: str | os.PathLike[str]) -> str:
    text = os.fspath(spec)
    return _MANGLED_URL.sub(lambda m: m.group(1) + "://", text, count=1)


def _resolve_local(text: str) -> list[TrafficFile] | Path:
    p = Path(text)
    if p.exists():
        if p.is_dir():
            if _is_hf_folder(p):
                return p
            files = _folder_files(p, text)
            if not files:
                raise InputError(
                    f"{text}: is a directory — give a traffic file ({KINDS_TEXT}), a folder holding "
                    "some (this one holds none), or a folder written by datasets' save_to_disk"
                )
            return files
        _check_kind(p.name, text)
        return [_local_file(p, text)]
    if not _MAGIC.search(text):
        raise InputError(f"{text}: file not found — check the path")
    import glob

    matches = sorted(glob.glob(text, recursive=True))
    if not matches:
        raise InputError(
            f"{text}: no file matches this pattern — check it (quote a pattern so that equiv, not the shell, "
            "expands it)"
        )
    out: list[TrafficFile] = []
    for m in matches:
        q = Path(m)
        if q.is_dir():
            if _is_hf_folder(q):
                raise InputError(f"{m}: is a folder written by datasets' save_to_disk — give it alone, not in a glob")
            out.extend(_folder_files(q, m))
        elif q.is_file() and not _hidden(q.name):
            _check_kind(q.name, m)
            out.append(_local_file(q, m))
    if not out:
        raise InputError(f"{text}: no traffic file matches this pattern (only empty folders) — check it")
    return out


def _local_file(p: Path, display: str) -> TrafficFile:
    return TrafficFile(display=display, key=os.path.abspath(p), local=p)


def _is_hf_folder(p: Path) -> bool:
    return any((p / n).is_file() for n in HF_MARKERS)


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _folder_files(p: Path, display: str) -> list[TrafficFile]:
    """Traffic files under ``p`` at any depth, sorted by relative path; hidden entries and datasets folders left out."""
    found: list[tuple[str, Path]] = []
    for root, dirs, names in os.walk(p):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not _hidden(d) and not _is_hf_folder(here / d))
        for n in names:
            if not _hidden(n) and kind_of(n) is not None:
                found.append(((here / n).relative_to(p).as_posix(), here / n))
    return [_local_file(f, os.path.join(display, rel)) for rel, f in sorted(found)]


def _folder_digest(p: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(f.relative_to(p).as_posix().encode() + b"\0")
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def _file_sha256(f: TrafficFile) -> Any:
    h = hashlib.sha256()
    with f.open(block_size=1 << 22) as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h


def _relative_names(files: list[TrafficFile]) -> list[str]:
    """Each file's path below the deepest folder that holds them all ("/"-separated)."""
    parts = [_parts(f.key) for f in files]
    common = parts[0][:-1]
    for ps in parts[1:]:
        n = 0
        while n < len(common) and n < len(ps) - 1 and common[n] == ps[n]:
            n += 1
        common = common[:n]
    return ["/".join(ps[len(common) :]) for ps in parts]


def _parts(key: str) -> list[str]:
    m = _URL.match(key)
    if m:
        return [m.group(0).lower(), *key[m.end() :].split("/")]
    return list(Path(key).parts)


# ------------------------------------------------------------------------------------ buckets


def _filesystem(scheme: str, text: str) -> Any:
    try:
        import fsspec
    except ImportError:
        raise InputError(f"{text}: reading {scheme}:// paths needs the cloud extra — {_CLOUD_EXTRA}") from None
    try:
        return fsspec.filesystem(scheme, skip_instance_cache=True)
    except ImportError:
        package = "s3fs" if scheme == "s3" else "gcsfs"
        raise InputError(
            f"{text}: reading {scheme}:// paths needs {package} (the cloud extra) — {_CLOUD_EXTRA}"
        ) from None
    except Exception as e:  # a client that cannot even start (bad configuration)
        raise InputError(f"{text}: cannot set up {scheme}:// access ({type(e).__name__}: {e})") from None


def _resolve_remote(text: str) -> list[TrafficFile]:
    m = _URL.match(text)
    assert m is not None
    scheme = m.group(1).lower()
    shown = f"{scheme}://"
    path = text[m.end() :].rstrip("/")
    if not path:
        raise InputError(f"{text}: no bucket — write {scheme}://bucket/key, a prefix or a glob")
    fs = _filesystem(scheme, text)

    def file(p: str) -> TrafficFile:
        url = shown + p
        return TrafficFile(display=url, key=url, fs=fs, remote=p)

    try:
        if _MAGIC.search(path):
            matches: dict[str, Any] = fs.glob(path, detail=True)
            if not matches:
                raise InputError(
                    f"{text}: no file matches this pattern — check it (quote a pattern so that the shell "
                    "leaves it alone)"
                )
            out: list[TrafficFile] = []
            for p, info in sorted(matches.items()):
                if info.get("type") == "directory":
                    out.extend(file(q) for q in _remote_folder(fs, p))
                elif not _hidden(p.rsplit("/", 1)[-1]):
                    _check_kind(p.rsplit("/", 1)[-1], shown + p)
                    out.append(file(p))
            if not out:
                raise InputError(f"{text}: no traffic file matches this pattern (only empty prefixes) — check it")
            return out
        try:
            info = fs.info(path)
        except FileNotFoundError:
            raise InputError(f"{text}: file not found — check the URL (bucket, key) and the credentials") from None
        if info.get("type") == "directory":
            keys = _remote_folder(fs, path)
            if not keys:
                raise InputError(
                    f"{text}: is a prefix (folder) with no traffic file under it — give a traffic file "
                    f"({KINDS_TEXT}), a prefix holding some, or a glob"
                )
            return [file(q) for q in keys]
        _check_kind(path.rsplit("/", 1)[-1], text)
        return [file(path)]
    except InputError:
        raise
    except PermissionError as e:
        raise InputError(f"{text}: access denied ({e}) — check the credentials and the bucket's permissions") from None
    except Exception as e:  # the boundary with the cloud client: network, credentials, endpoint ...
        raise InputError(
            f"{text}: cannot be listed ({type(e).__name__}: {str(e)[:200]}) — check the URL, the credentials "
            "and the network"
        ) from None


def _remote_folder(fs: Any, prefix: str) -> list[str]:
    keys = []
    for p in fs.find(prefix):
        rel = p[len(prefix) :].lstrip("/") if p.startswith(prefix) else p
        if any(_hidden(part) for part in rel.split("/")):
            continue
        if kind_of(p.rsplit("/", 1)[-1]) is not None:
            keys.append(p)
    return sorted(keys)
