"""One large JSON Lines file sampled on several cores (equiv.traffic.split) gives exactly the one-pass sample:
records, weights, clusters, counts, time spans, read stats and the first error, whatever the cut."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from equiv.errors import InputError
from equiv.sampling import stratified_sample
from equiv.traffic import split
from equiv.traffic.read import ReadStats, read_traffic


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        if out and rng.random() < 0.15:  # a duplicate of an earlier prompt, anywhere in the file
            row = dict(rng.choice(out))
            row.pop("id", None)
        else:
            row = {
                "prompt_type": rng.choice("abcd"),
                "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": f"q{rng.randrange(400)}"}],
                "params": {"temperature": rng.choice([0, 0.5])},
                "usage": {"prompt_tokens": rng.randrange(1, 90), "completion_tokens": 3},
            }
            if rng.random() < 0.9:
                row["response"] = f"a{i}"
        row["timestamp"] = datetime(2025, 3, 1 + i * 27 // n, tzinfo=UTC).isoformat()
        if rng.random() < 0.7:
            row["id"] = f"r{rng.randrange(n)}"  # repeated ids: made unique in the sample
        out.append(row)
    return out


def _write(path: Path, rows: list[Any]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(r if isinstance(r, str) else json.dumps(r) + "\n")
    return path


def _sample(path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, **kw: Any) -> Any:
    monkeypatch.setenv("EQUIV_READ_WORKERS", str(workers))
    monkeypatch.setenv("EQUIV_SPLIT_MIN_BYTES", "1")
    read_kw = {k: kw.pop(k) for k in ("skip_invalid", "since", "prompt_type_field") if k in kw}
    stats = ReadStats()
    try:
        s = stratified_sample(read_traffic(path, stats=stats, **read_kw), **kw)
    except InputError as e:
        return "error", str(e)
    return (
        {t: [r.model_dump() for r in recs] for t, recs in s.records.items()},
        s.cluster,
        s.weight,
        s.volume,
        s.first_ts,
        s.last_ts,
        s.skipped,
        s.clusters_seen,
        s.records_seen,
        (stats.read, stats.rows, dict(stats.skipped), stats.skipped_lines, stats.categories),
    )


@pytest.mark.parametrize(
    ("seed", "per_type", "kw"),
    [
        (0, 5, {}),
        (1, 40, {"require_response": True}),
        (2, 1000, {"require_response": True, "types": ["a", "c"]}),
        (3, 7, {"skip_invalid": True, "since": datetime(2025, 3, 9, tzinfo=UTC)}),
    ],
)
def test_split_sample_is_the_one_pass_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, per_type: int, kw: dict[str, Any]
) -> None:
    rows: list[Any] = list(_rows(3000, seed))
    if kw.get("skip_invalid"):
        for at in (5, 1700, 2900):  # bad lines in several ranges: counted, first examples in file order
            rows.insert(at, "{oops\n")
        rows.insert(2500, "\n")
    path = _write(tmp_path / "t.jsonl", rows)
    cuts: list[int] = []
    real_cut, real_collect = split.cut, split.collect
    monkeypatch.setattr(split, "cut", lambda p, n: cuts.append(n) or real_cut(p, n))
    parts: list[Any] = []  # what the children sent back: the split really ran (no quiet fallback)
    monkeypatch.setattr(split, "collect", lambda proc: parts.append(real_collect(proc)) or parts[-1])
    one = _sample(path, monkeypatch, 1, per_type=per_type, seed=seed, **dict(kw))
    assert cuts == []  # one worker: not cut
    for workers in (2, 3, 5):
        assert _sample(path, monkeypatch, workers, per_type=per_type, seed=seed, **dict(kw)) == one
    assert cuts == [2, 3, 5] and len(parts) == 1 + 2 + 4
    records = one[0]
    assert sum(len(v) for v in records.values()) > 0
    assert any(w > 1 for w in one[2].values()) or per_type < 10  # duplicates across ranges weigh together


def test_the_first_bad_line_is_named_as_in_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows: list[Any] = list(_rows(2000, 4))
    rows.insert(1500, "{oops\n")  # in the second of two ranges
    rows.insert(1800, json.dumps({"messages": [{"role": "user", "content": "x"}], "params": {"api_base": "h"}}) + "\n")
    path = _write(tmp_path / "t.jsonl", rows)
    one = _sample(path, monkeypatch, 1, per_type=5, seed=0)
    cuts: list[int] = []
    real_cut = split.cut
    monkeypatch.setattr(split, "cut", lambda p, n: cuts.append(n) or real_cut(p, n))
    two = _sample(path, monkeypatch, 2, per_type=5, seed=0)
    assert cuts == [2] and one == two and one[0] == "error" and f"{path}:1501:" in one[1]


def test_a_failed_child_reads_the_file_in_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "t.jsonl", _rows(1500, 5))
    one = _sample(path, monkeypatch, 1, per_type=5, seed=0)

    def broken(job: Any) -> Any:  # a child that dies without a word (killed, out of memory ...)
        return subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.exit(9)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    monkeypatch.setattr(split, "start_child", broken)
    assert _sample(path, monkeypatch, 3, per_type=5, seed=0) == one

    def unstartable(job: Any) -> Any:
        raise OSError("no interpreter")

    monkeypatch.setattr(split, "start_child", unstartable)
    assert _sample(path, monkeypatch, 3, per_type=5, seed=0) == one


def test_only_one_local_native_jsonl_file_is_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from equiv.traffic.read import _splittable

    monkeypatch.setenv("EQUIV_READ_WORKERS", "2")
    monkeypatch.setenv("EQUIV_SPLIT_MIN_BYTES", "1")
    native = _write(tmp_path / "n.jsonl", _rows(50, 6))
    assert _splittable(native, 1 << 20) is not None
    log = _write(tmp_path / "log.jsonl", [{"request": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}])
    assert _splittable(log, 1 << 20) is None  # its first record is not native
    assert _splittable([native, native.with_name("n2.jsonl")], 1 << 20) is None
    monkeypatch.setenv("EQUIV_SPLIT_MIN_BYTES", str(native.stat().st_size + 1))
    assert _splittable(native, 1 << 20) is None  # too small to be worth it


def test_cut_points_start_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", ["x" * 100 + "\n"] * 40 + ["y" * 3000 + "\n"])
    ranges = split.cut(path, 4)
    data = path.read_bytes()
    assert len(ranges) == 3  # the last cut falls in the long last line: one range fewer
    assert ranges[0][0] == 0 and ranges[-1][1] is None
    for (_s, e), (s2, _) in zip(ranges, ranges[1:], strict=False):
        assert e == s2 and data[s2 - 1 : s2] == b"\n"
    assert split.lines_before(str(path), ranges[1][0]) == data[: ranges[1][0]].count(b"\n")


def test_cutting_never_holds_a_long_line(tmp_path: Path) -> None:
    import tracemalloc

    path = _write(tmp_path / "t.jsonl", ["{}\n", "\x00" * (8 << 20) + "\n", "{}\n"])  # a cut falls in the 8 MiB line
    tracemalloc.start()
    try:
        ranges = split.cut(path, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ranges == [(0, (8 << 20) + 4), ((8 << 20) + 4, None)] and peak < 4 << 20  # not the 8 MiB line
