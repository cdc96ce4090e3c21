"""Traffic at any size, wherever it lives: globs, folders, .gz / .zst, parquet through pyarrow.dataset, s3://.

Every way of giving the same calls reads the same records as the plain native file; the run key names the
content (sorted names and bytes), not how the path was written; errors name the file and the line.
The s3:// tests run against an S3-compatible server on 127.0.0.1 (moto's ThreadedMotoServer).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from equiv.errors import InputError
from equiv.schema import TrafficRecord
from equiv.traffic import ReadStats, file_digest, read_traffic
from equiv.traffic import tables as tables_mod

DATA = Path(__file__).parent.parent / "data"
NATIVE = DATA / "traffic_formats" / "native.jsonl"
BATCH = DATA / "traffic_formats" / "openai_batch"
LINES = NATIVE.read_bytes().splitlines(keepends=True)


def _read(path: Any, **kw: Any) -> list[TrafficRecord]:
    return list(read_traffic(path, **kw))


def _error(path: Any, **kw: Any) -> str:
    with pytest.raises(InputError) as e:
        _read(path, **kw)
    return e.value.message


def _key(r: TrafficRecord) -> tuple[Any, ...]:
    return (r.id, r.prompt_type, r.messages, r.response, r.usage, r.timestamp, r.params, r.metadata, r.model)


NATIVE_KEYS = [_key(r) for r in read_traffic(NATIVE)]


def _zst(data: bytes, frames: int = 1) -> bytes:
    """zstd data in ``frames`` frames (as pzstd or a log shipper appending one per flush writes it)."""
    size = -(-len(data) // frames)
    return b"".join(zstandard.ZstdCompressor().compress(data[i : i + size]) for i in range(0, len(data), size))


def _split(root: Path) -> list[Path]:
    """native.jsonl as three files of three kinds, in nested folders: 12 + 12 + 12 lines."""
    (root / "2025-06" / "01").mkdir(parents=True)
    (root / "2025-06" / "02").mkdir(parents=True)
    a = root / "2025-06" / "01" / "part-0.jsonl"
    b = root / "2025-06" / "01" / "part-1.jsonl.gz"
    c = root / "2025-06" / "02" / "part-0.jsonl.zst"
    a.write_bytes(b"".join(LINES[:12]))
    b.write_bytes(gzip.compress(b"".join(LINES[12:24])))
    c.write_bytes(_zst(b"".join(LINES[24:]), frames=3))
    return [a, b, c]


# ------------------------------------------------------------------------------------ compression


@pytest.mark.parametrize("frames", [1, 4])
def test_zst_is_read_as_the_plain_file(tmp_path: Path, frames: int) -> None:
    f = tmp_path / "t.jsonl.zst"
    f.write_bytes(_zst(NATIVE.read_bytes(), frames))
    recs = _read(f)
    assert [_key(r) for r in recs] == NATIVE_KEYS
    assert recs[35].source == f"{f}:36"


def test_gz_and_zst_of_every_text_layout(tmp_path: Path) -> None:
    csv = DATA / "traffic" / "traffic.csv"
    arr = DATA / "traffic" / "array.json"
    for src in (csv, arr, NATIVE):
        plain = [_key(r) for r in read_traffic(src)]
        gz = tmp_path / (src.name + ".gz")
        gz.write_bytes(gzip.compress(src.read_bytes()))
        zst = tmp_path / (src.name + ".zst")
        zst.write_bytes(_zst(src.read_bytes(), 2))
        assert [_key(r) for r in read_traffic(gz)] == plain, gz
        assert [_key(r) for r in read_traffic(zst)] == plain, zst
    ndjson = tmp_path / "t.ndjson.zst"
    ndjson.write_bytes(_zst(NATIVE.read_bytes()))
    assert [_key(r) for r in read_traffic(ndjson)] == NATIVE_KEYS


def test_a_truncated_or_corrupt_zst_file_is_an_error_naming_the_line(tmp_path: Path) -> None:
    data = _zst(NATIVE.read_bytes(), 3)
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(data[: len(data) - 7])  # the last frame loses its end: never silently shorter
    msg = _error(cut)
    assert msg.startswith(f"{cut}:") and "the zstd data is corrupt or truncated" in msg, msg
    assert "ends inside a frame" in msg and "—" in msg
    junk = tmp_path / "junk.jsonl.zst"
    junk.write_bytes(b"this is not zstd at all\n")
    msg = _error(junk)
    assert msg.startswith(f"{junk}:1: the zstd data is corrupt or truncated"), msg
    assert "--skip-invalid" not in msg
    with pytest.raises(InputError):
        _read(junk, skip_invalid=True)  # skipping a record cannot skip a broken file


def test_a_compressed_file_named_as_plain_text_says_how_to_name_it(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_bytes(_zst(NATIVE.read_bytes()))
    assert "the file is zstd-compressed — name it .jsonl.zst" in _error(f)


def test_zst_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    """Repeated lines shrink a thousandfold: 20 MB of JSONL in a few KB, never decompressed whole at once."""
    import tracemalloc

    from equiv.traffic.compression import decompressing

    f = tmp_path / "big.jsonl.zst"
    line = LINES[12]
    with f.open("wb") as out, zstandard.ZstdCompressor().stream_writer(out) as w:
        for _ in range(40_000):
            w.write(line)
    assert f.stat().st_size < 20_000
    tracemalloc.start()
    with decompressing(f.open("rb"), "zstd") as r:
        n = sum(1 for _ in iter(lambda: r.readline(1 << 20), b""))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 40_000
    assert peak < 4 * 2**20, peak
    assert sum(1 for _ in read_traffic(f, where=["prompt_type=nope"])) == 0  # and read_traffic reads it all


# ------------------------------------------------------------------------------------ globs and folders


def test_a_glob_reads_the_files_it_matches_in_sorted_order(tmp_path: Path) -> None:
    _split(tmp_path)
    for pattern in ("**/*.jsonl*", "2025-06/*/part-*", "2025-*/**/part-[01].jsonl*"):
        recs = _read(str(tmp_path / pattern))
        assert [_key(r) for r in recs] == NATIVE_KEYS, pattern
    recs = _read(str(tmp_path / "**" / "*.jsonl*"))
    assert recs[0].source == f"{tmp_path}/2025-06/01/part-0.jsonl:1"
    assert recs[12].source == f"{tmp_path}/2025-06/01/part-1.jsonl.gz:1"
    assert recs[35].source == f"{tmp_path}/2025-06/02/part-0.jsonl.zst:12"


def test_a_folder_reads_every_traffic_file_under_it(tmp_path: Path) -> None:
    _split(tmp_path)
    (tmp_path / "README.md").write_text("not traffic")
    (tmp_path / "2025-06" / "_SUCCESS").write_text("")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.jsonl").write_text("not read\n")
    (tmp_path / "2025-06" / ".part-9.jsonl").write_text("not read\n")
    assert [_key(r) for r in _read(tmp_path)] == NATIVE_KEYS
    assert [_key(r) for r in _read(f"{tmp_path}/")] == NATIVE_KEYS


def test_a_list_of_paths_is_read_in_sorted_order_once_each(tmp_path: Path) -> None:
    a, b, c = _split(tmp_path)
    assert [_key(r) for r in _read([c, a, b, a])] == NATIVE_KEYS
    assert [_key(r) for r in _read([str(tmp_path / "2025-06" / "02"), a, b])] == NATIVE_KEYS


def test_a_datasets_folder_keeps_its_meaning_and_digest(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "ds"
    rows = [json.loads(line) for line in LINES]
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    recs = _read(folder)
    assert [(r.id, r.prompt_type, r.messages, r.response) for r in recs] == [
        (k[0], k[1], k[2], k[3]) for k in NATIVE_KEYS
    ]
    h = hashlib.sha256()  # as before: its files' relative names and bytes
    for f in sorted(x for x in folder.rglob("*") if x.is_file()):
        h.update(f.relative_to(folder).as_posix().encode() + b"\0" + f.read_bytes())
    assert file_digest(folder) == h.hexdigest()
    # inside a folder of traffic files it is left out; in a list it must come alone
    shutil.copy(NATIVE, tmp_path / "native.jsonl")
    assert len(_read(tmp_path)) == 36
    assert "give it alone" in _error([folder, tmp_path / "native.jsonl"])


def test_paths_that_name_nothing_readable(tmp_path: Path) -> None:
    msg = _error(str(tmp_path / "logs" / "2025-*.jsonl.gz"))
    assert msg.startswith(f"{tmp_path}/logs/2025-*.jsonl.gz: no file matches") and "—" in msg
    with pytest.raises(InputError, match="no file matches"):
        read_traffic(str(tmp_path / "*.jsonl"))  # at the call, before iterating
    with pytest.raises(InputError, match="no file matches"):
        file_digest(str(tmp_path / "*.jsonl"))
    (tmp_path / "notes.txt").write_text("x")
    assert "is a directory — give a traffic file" in _error(tmp_path)
    assert f"{tmp_path}/notes.txt: unsupported file type '.txt'" in _error(str(tmp_path / "*"))
    literal = tmp_path / "[2025].jsonl"  # a path that exists is never taken as a glob
    shutil.copy(NATIVE, literal)
    assert len(_read(literal)) == 36
    with pytest.raises(InputError, match="no traffic path given"):
        read_traffic([])


def test_errors_name_the_file_and_the_line_inside_a_glob(tmp_path: Path) -> None:
    a, b, c = _split(tmp_path)
    lines = gzip.decompress(b.read_bytes()).splitlines(keepends=True)
    lines[4] = b'{"prompt": "x", "prompt_type": ["not", "text"]}\n'
    b.write_bytes(gzip.compress(b"".join(lines)))
    msg = _error(str(tmp_path / "**" / "*.jsonl*"))
    assert msg.startswith(f"{b}:5: prompt_type must be text"), msg
    stats = ReadStats()
    assert len(_read(tmp_path, skip_invalid=True, stats=stats)) == 35
    assert stats.skipped_lines == [f"{b}:5: prompt_type must be text to be used as the prompt-type, got an array"]


def test_an_empty_file_in_a_glob_is_not_an_error(tmp_path: Path) -> None:
    _split(tmp_path)
    (tmp_path / "2025-06" / "01" / "part-2.jsonl").write_text("")
    assert len(_read(tmp_path)) == 36
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.jsonl").write_text("")
    (empty / "b.jsonl").write_text("\n")
    assert "no records" in _error(empty)


# ------------------------------------------------------------------------------------ the run key


def test_the_digest_names_the_content_not_the_spelling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = _split(tmp_path / "logs")
    spellings: list[Any] = [
        tmp_path / "logs",
        str(tmp_path / "logs" / "**" / "*.jsonl*"),
        str(tmp_path / "logs" / "2025-06" / "*" / "part-*"),
        [c, b, a],
        [str(a), str(tmp_path / "logs" / "2025-06" / "01" / "*.gz"), c],
    ]
    keys = {file_digest(s) for s in spellings}
    assert len(keys) == 1
    key = keys.pop()
    monkeypatch.chdir(tmp_path)  # a relative spelling of the same files
    assert file_digest("logs") == key and file_digest("./logs/**/part-*") == key
    shutil.move(tmp_path / "logs", tmp_path / "moved")  # the whole set moved: the same content
    assert file_digest(tmp_path / "moved") == key
    (tmp_path / "moved" / "2025-06" / "02" / "part-0.jsonl.zst").rename(
        tmp_path / "moved" / "2025-06" / "02" / "p.jsonl.zst"
    )
    assert file_digest(tmp_path / "moved") != key  # a renamed file is other traffic
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(NATIVE, one / "x.jsonl")
    expected = hashlib.sha256(NATIVE.read_bytes()).hexdigest()
    assert file_digest(one) == file_digest(str(one / "*")) == file_digest(NATIVE) == expected  # one file: its bytes


def test_the_digest_changes_with_any_file(tmp_path: Path) -> None:
    a, b, c = _split(tmp_path)
    before = file_digest(tmp_path)
    a.write_bytes(a.read_bytes() + b"\n")
    assert file_digest(tmp_path) != before
    a.write_bytes(a.read_bytes()[:-1])
    assert file_digest(tmp_path) == before
    (tmp_path / "extra.jsonl").write_bytes(LINES[0])
    assert file_digest(tmp_path) != before


# ------------------------------------------------------------------------------------ parquet


def _parquet(path: Path, rows: list[dict[str, Any]], row_group_size: int = 5) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def test_parquet_reads_the_native_records_in_order_across_row_groups(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in LINES]
    f = _parquet(tmp_path / "t.parquet", rows)
    recs = _read(f)
    assert [_key(r) for r in recs] == NATIVE_KEYS
    assert recs[35].source == f"{f}:row 36"


def test_parquet_reads_only_the_columns_a_record_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [json.loads(line) for line in LINES]
    for i, r in enumerate(rows):
        r["embedding"] = [0.5] * 256  # a heavy column no record reads
        r["feature"] = f"f{i % 2}"
        r["team"] = "core"
    f = _parquet(tmp_path / "t.parquet", rows)
    asked: list[list[str] | None] = []
    projection = tables_mod._projection

    def spy(names: list[str], extra: Any) -> list[str] | None:
        asked.append(projection(names, extra))  # the columns the scanner is given
        return asked[-1]

    monkeypatch.setattr(tables_mod, "_projection", spy)
    recs = _read(f)
    assert asked[-1] is not None and "embedding" not in asked[-1] and "feature" not in asked[-1]
    assert set(asked[-1]) >= {"id", "prompt_type", "messages", "response", "usage", "params", "timestamp", "metadata"}
    assert [_key(r) for r in recs] == NATIVE_KEYS
    # a column the user names is read: prompt_type_field, --where
    assert {r.prompt_type for r in _read(f, prompt_type_field="feature")} == {"f0", "f1"}
    assert "feature" in (asked[-1] or [])
    assert len(_read(f, where=["team=core"])) == 36 and "team" in (asked[-1] or [])


def test_parquet_projection_reads_all_columns_for_a_format_that_does_not_declare_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from equiv.traffic.registry import FORMATS, Format

    fake = Format("undeclared", frozenset({"spans"}), lambda row: False, lambda row, f, p: {})
    monkeypatch.setitem(FORMATS, "undeclared", fake)
    assert tables_mod._projection(["spans", "x", "y"], ()) is None  # its rows may be here: read everything
    assert tables_mod._projection(["messages", "x"], ()) == ["messages"]


def test_parquet_errors_keep_their_meaning(tmp_path: Path) -> None:
    bad = _parquet(tmp_path / "bad.parquet", [{"prompt": "ok"}, {"prompt": "   "}])
    assert f"{bad}:row 2: prompt is empty" in _error(bad)
    cols = _parquet(tmp_path / "cols.parquet", [{"question": "q", "answer": "a"}])
    assert "no 'messages' or 'prompt' column (columns: question, answer)" in _error(cols)
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b"PAR1 but nothing else")
    assert "cannot be read as Parquet" in _error(fake)


def test_parquet_in_a_folder_with_jsonl(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in LINES]
    _parquet(tmp_path / "a.parquet", rows[:20])
    (tmp_path / "b.jsonl.zst").write_bytes(_zst(b"".join(LINES[20:])))
    assert [_key(r) for r in _read(tmp_path)] == NATIVE_KEYS


# ------------------------------------------------------------------------------------ s3:// (moto)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A bucket on the local S3 server, reached the way a user reaches theirs: AWS_* settings."""
    import boto3

    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    client = boto3.client("s3")
    name = f"traffic-{tmp_path.name.lower().replace('_', '-')}"[:60].rstrip("-")
    client.create_bucket(Bucket=name)

    class Bucket:
        def __init__(self) -> None:
            self.name = name
            self.url = f"s3://{name}"

        def put(self, key: str, body: bytes) -> None:
            client.put_object(Bucket=name, Key=key, Body=body)

    return Bucket()


def test_s3_gz_and_zst_objects_and_a_glob_over_them(bucket: Any) -> None:
    gz = gzip.compress(b"".join(LINES[:18]))
    zst = _zst(b"".join(LINES[18:]), frames=2)
    bucket.put("logs/2025-06-01.jsonl.gz", gz)
    bucket.put("logs/2025-06-02.jsonl.zst", zst)
    bucket.put("logs/_SUCCESS", b"")
    bucket.put("other/ignored.jsonl", LINES[0])
    url = bucket.url
    for spec in (f"{url}/logs/2025-*.jsonl*", f"{url}/logs/*", f"{url}/logs", f"{url}/logs/", f"{url}/**/2025-06-0?.*"):
        assert [_key(r) for r in _read(spec)] == NATIVE_KEYS, spec
    recs = _read(f"{url}/logs/*")
    assert recs[0].source == f"{url}/logs/2025-06-01.jsonl.gz:1"
    assert recs[35].source == f"{url}/logs/2025-06-02.jsonl.zst:18"
    one = _read(f"{url}/logs/2025-06-02.jsonl.zst")
    assert [_key(r) for r in one] == NATIVE_KEYS[18:]
    assert [_key(r) for r in _read(Path(f"{url}/logs/*"))] == NATIVE_KEYS  # Path() leaves s3:/bucket/...


def test_s3_digest_is_the_objects_content(bucket: Any, tmp_path: Path) -> None:
    gz = gzip.compress(b"".join(LINES[:18]))
    zst = _zst(b"".join(LINES[18:]))
    bucket.put("logs/a.jsonl.gz", gz)
    bucket.put("logs/b.jsonl.zst", zst)
    local = tmp_path / "copy"
    local.mkdir()
    (local / "a.jsonl.gz").write_bytes(gz)
    (local / "b.jsonl.zst").write_bytes(zst)
    key = file_digest(f"{bucket.url}/logs/*")
    assert key == file_digest(f"{bucket.url}/logs") == file_digest(local)  # the same files, wherever they are
    assert file_digest(f"{bucket.url}/logs/a.jsonl.gz") == hashlib.sha256(gz).hexdigest()
    bucket.put("logs/b.jsonl.zst", _zst(b"".join(LINES[18:35])))  # an object rewritten: another run
    assert file_digest(f"{bucket.url}/logs/*") != key


def test_s3_parquet_and_openai_batch(bucket: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([json.loads(line) for line in LINES]), buf, row_group_size=10)
    bucket.put("tables/t.parquet", buf.getvalue())
    assert [_key(r) for r in _read(f"{bucket.url}/tables/t.parquet")] == NATIVE_KEYS
    bucket.put("batch/input.jsonl", (BATCH / "input.jsonl").read_bytes())
    bucket.put("batch/output.jsonl.gz", gzip.compress((BATCH / "output.jsonl").read_bytes()))
    stats = ReadStats()
    assert len(_read(f"{bucket.url}/batch", stats=stats)) == 36
    assert stats.skipped["openai-batch: not yet run"] == 1


def test_s3_errors_name_the_object_and_the_line(bucket: Any) -> None:
    lines = list(LINES)
    lines[6] = b'{"prompt": "x", "timestamp": "yesterday-ish"}\n'
    bucket.put("bad/a.jsonl.gz", gzip.compress(b"".join(lines)))
    msg = _error(f"{bucket.url}/bad/*.gz")
    assert msg.startswith(f"{bucket.url}/bad/a.jsonl.gz:7: timestamp 'yesterday-ish' is not a date and time"), msg
    assert _error(f"{bucket.url}/nothing/*.gz").startswith(f"{bucket.url}/nothing/*.gz: no file matches")
    assert "file not found" in _error(f"{bucket.url}/missing.jsonl")
    assert "file not found" in _error("s3://no-such-bucket-here/t.jsonl")
    bucket.put("bad/notes.txt", b"x")
    assert "unsupported file type '.txt'" in _error(f"{bucket.url}/bad/notes.txt")


def test_missing_cloud_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec

    def missing(protocol: str, **kw: Any) -> Any:
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec, "filesystem", missing)
    msg = _error("s3://bucket/logs/*.jsonl.gz")
    assert msg.startswith("s3://bucket/logs/*.jsonl.gz: reading s3:// paths needs s3fs") and "equiv[cloud]" in msg
    assert "gcsfs" in _error("gs://bucket/t.jsonl") and "equiv[cloud]" in _error("gs://bucket/t.jsonl")
