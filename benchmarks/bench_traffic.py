"""Reading and sampling 1,000,000 native traffic records (~1.2 GB of JSONL), next to a bare loop and pandas.

    python benchmarks/bench_traffic.py                        # 1,000,000 records, generated once (~1 GB)
    python benchmarks/bench_traffic.py --records 100000       # a quick check
    python benchmarks/bench_traffic.py --records 100000 --profile   # + where (c)'s time goes (cProfile)
    python benchmarks/bench_traffic.py --dir /data/bench --only a,c

Issue 14 point 3: sampling 1M records must take at most 1.5x the time of a bare orjson line loop over the
same file, in at most 300 MB of RSS. Measured, each in a fresh child process so that its peak RSS (VmHWM,
else ru_maxrss) is its own, after one warm-up read of the file (all runs read from the page cache):

  (a) bare loop    ``for line in f: orjson.loads(line)`` (the floor: parsing JSON and nothing else)
  (b) pandas       ``pandas.read_json(path, lines=True)``, no chunksize, as a user would call it
  (c) equiv        ``stratified_sample(read_traffic(path, ...), ...)`` with the arguments and defaults
                   ``equiv.pipeline._prepare`` passes (``Settings()``: per_type 200, seed 0, logged baseline)
  (d) file_digest  the other pass ``_prepare`` makes over the file (it keys the run directory); shown apart

(c) cuts the file into one byte range per core (equiv.traffic.split): its CPU includes the range readers' and
its peak RSS is its own, the readers' largest printed beside it; (c1) is (c) on one core (EQUIV_READ_WORKERS=1).

Each child's address space is capped (--mem-cap-gb, default 60% of the memory available), so that pandas on
a large file ends in MemoryError (printed as such) instead of waking the OOM killer on a shared machine.

The file (cached in --dir, by default <tmp>/equiv-bench-traffic, as native-<N>-v<version>.jsonl) holds
native records as a chat gateway would log them: 32 prompt-types with Zipf volumes (the largest ~1/3 of the
traffic, the smallest ~0.5%), a system prompt per type (80 to 2,500 characters) and a user message of a few
dozen to a few thousand characters (some multi-turn), model, params (temperature, max_tokens, sometimes
response_format / stop / seed), usage, ISO timestamps over 30 days, metadata (tenant, user, region, tags ...);
1% have no logged response, 5% no id. About 10% repeat an earlier prompt (same messages and params): a third
of those are the same line logged twice, a third retries of a recent request, a third a type's few "FAQ"
prompts, so clusters are counted and weighed. Text is mostly ASCII with some accented words, CJK and emoji.

Prints figures; asserts nothing (benchmarks are not timed tests).
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GEN_VERSION = 1  # bump when the generated records change, so a cached file is not reused
N_TYPES = 32
TIME_TARGET = 1.5  # (c) wall time / (a) wall time
RSS_TARGET_MB = 300.0  # MB = 10**6 bytes

_TYPE_NAMES = [
    "support-triage", "refund-eligibility", "summarize-ticket", "classify-intent", "extract-invoice",
    "email-reply", "product-qa", "sql-from-question", "translate-fr", "translate-de", "code-review",
    "order-status", "sentiment", "moderation", "title-generation", "kb-answer", "meeting-notes",
    "lead-scoring", "address-parse", "faq-bot", "resume-screen", "contract-clauses", "churn-reason",
    "search-rewrite", "tag-suggest", "json-repair", "chart-caption", "legal-summary", "onboarding-chat",
    "bug-report-dedupe", "pricing-quote", "survey-coding",
]  # fmt: skip
_MODELS = ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022", "gpt-4.1-2025-04-14"]
_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1"]
_TAGS = ["prod", "web", "mobile", "api", "batch", "beta", "enterprise", "free-tier"]
_EXOTIC = ["café", "naïve", "über", "façade", "São Paulo", "Zürich", "日本語", "数据", "😀", "👍", "→", "€"]


# ---------------------------------------------------------------------------------------------- generation


def _vocabulary(rng: random.Random, n: int = 4000) -> list[str]:
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou", "er")]
    common = "the a to of and in is for on that with your this it you be are as can order please we".split()
    words = common + ["".join(rng.choices(syllables, k=rng.choice((1, 2, 2, 3, 3, 4)))) for _ in range(n)]
    return words + _EXOTIC


def _corpus(rng: random.Random, n_words: int) -> str:
    """Zipf-distributed words in sentences and paragraphs: the text messages are cut from."""
    vocab = _vocabulary(rng)
    cum = list(itertools.accumulate(1 / (r + 1) ** 1.07 for r in range(len(vocab))))
    words = rng.choices(vocab, cum_weights=cum, k=n_words)
    out, i = [], 0
    while i < len(words):
        k = rng.randint(5, 24)
        sentence = " ".join(words[i : i + k])
        out.append(sentence[:1].upper() + sentence[1:] + rng.choice(".....?!:"))
        out.append("\n\n" if rng.random() < 0.12 else (" \n- " if rng.random() < 0.03 else " "))
        i += k
    return "".join(out)


def _lognormal_len(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(rng.lognormvariate(math.log(median), sigma))))


class _Type:
    def __init__(self, rng: random.Random, name: str, corpus: str) -> None:
        self.name = name
        n = _lognormal_len(rng, 220, 0.6, 80, 2500)
        off = rng.randrange(len(corpus) - n)
        self.system = f"You are the {name.replace('-', ' ')} assistant of Acme Corp. " + corpus[off : off + n]
        self.model = rng.choice(_MODELS)
        self.params: dict[str, Any] = {
            "temperature": rng.choice([0, 0.2, 0.3, 0.7, 1.0]),
            "max_tokens": rng.choice([128, 256, 512, 1024, 2048]),
        }
        if rng.random() < 0.3:
            self.params["response_format"] = {"type": "json_object"}
        if rng.random() < 0.2:
            self.params["stop"] = ["\n\nUser:", "</answer>"]
        if rng.random() < 0.2:
            self.params["seed"] = rng.randrange(1000)
        if rng.random() < 0.2:
            self.params["top_p"] = rng.choice([0.9, 0.95, 1])
        self.user_median = rng.choice([50, 80, 120, 200])
        self.prefix = rng.choice(["Ticket #{n}:\n", "Customer message:\n", "Question: ", "Input:\n", ""])
        self.faq: list[list[dict[str, Any]]] = []


def generate(path: Path, records: int, seed: int = 0) -> None:
    """Write ``records`` native records to ``path`` (through a temporary file: an interrupted run caches nothing)."""
    import orjson

    rng = random.Random(seed)
    corpus = _corpus(rng, 900_000)  # ~6 MB of text
    types = [_Type(rng, name, corpus) for name in _TYPE_NAMES[:N_TYPES]]
    weights = list(itertools.accumulate(1 / (r + 1) ** 1.2 for r in range(len(types))))
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    step = timedelta(days=30) / records
    recent_lines: list[bytes] = []  # the last 2,000 lines: logged twice
    recent: list[tuple[_Type, list[dict[str, Any]]]] = []  # the last 2,000 prompts: retried

    def text(median: float, sigma: float, lo: int, hi: int) -> str:
        n = _lognormal_len(rng, median, sigma, lo, hi)
        off = rng.randrange(len(corpus) - n)
        return corpus[off : off + n]

    def new_prompt(t: _Type, i: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [{"role": "system", "content": t.system}]
        if rng.random() < 0.1:  # a conversation: earlier turns
            for _ in range(rng.randint(1, 2)):
                messages.append({"role": "user", "content": text(60, 0.7, 5, 1500)})
                messages.append({"role": "assistant", "content": text(80, 0.7, 5, 1500)})
        user = t.prefix.format(n=100000 + i) + text(t.user_median, 0.9, 20, 6000)
        messages.append({"role": "user", "content": user})
        return messages

    def record(t: _Type, messages: list[dict[str, Any]], i: int) -> dict[str, Any]:
        ts = t0 + step * i + timedelta(milliseconds=rng.randrange(-5000, 5000))
        response = text(70, 0.8, 2, 4000) if rng.random() >= 0.01 else None
        prompt_chars = sum(len(m["content"]) for m in messages)
        rec: dict[str, Any] = {}
        if rng.random() >= 0.05:
            rec["id"] = f"req_{rng.getrandbits(80):020x}"
        rec.update(
            prompt_type=t.name,
            timestamp=ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            model=t.model,
            messages=messages,
            params=t.params,
            response=response,
            usage={
                "prompt_tokens": prompt_chars // 4 + 3 * len(messages),
                "completion_tokens": len(response or "") // 4 + 1,
                "total_tokens": prompt_chars // 4 + 3 * len(messages) + len(response or "") // 4 + 1,
            },
            metadata={
                "tenant": f"tenant-{int(rng.paretovariate(1.2)) % 400}",
                "user_id": f"u_{rng.randrange(200_000)}",
                "region": rng.choice(_REGIONS),
                "app_version": f"3.{rng.randrange(20)}.{rng.randrange(10)}",
                "latency_ms": int(rng.lognormvariate(6.7, 0.6)),
                "tags": rng.sample(_TAGS, rng.randint(1, 3)),
            },
        )
        return rec

    tmp = path.with_name(path.name + ".partial")
    with tmp.open("wb", buffering=1 << 20) as f:
        for i in range(records):
            u = rng.random()
            if u < 0.10 / 3 and recent_lines:  # the same line logged twice
                f.write(rng.choice(recent_lines))
                continue
            t = rng.choices(types, cum_weights=weights)[0]
            if u < 0.20 / 3 and recent:  # a retry of a recent request
                t, messages = rng.choice(recent)
            elif u < 0.10:  # one of the type's FAQ prompts
                if len(t.faq) < 20:
                    t.faq.append(new_prompt(t, i))
                messages = rng.choice(t.faq)
            else:
                messages = new_prompt(t, i)
            line = orjson.dumps(record(t, messages, i)) + b"\n"
            f.write(line)
            _keep(recent_lines, line, rng)
            _keep(recent, (t, messages), rng)
    tmp.replace(path)


def _keep(ring: list[Any], item: Any, rng: random.Random, size: int = 2000) -> None:
    """Keep ``item`` among the last ones seen (a random older one makes room)."""
    if len(ring) < size:
        ring.append(item)
    else:
        ring[rng.randrange(size)] = item


# ---------------------------------------------------------------------------------------------- children


def _peak_mb() -> float:
    """This process's peak RSS in MB (10**6 bytes): VmHWM, else ru_maxrss (KiB on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def _cpu() -> float:
    """CPU seconds of this process and of its children that ended (equiv's range readers, equiv.traffic.split)."""
    r, k = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + k.ru_utime + k.ru_stime


def _children_peak_mb() -> float:
    """The largest peak RSS of this process's children that ended, in MB (0 if none)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e6


def _import_equiv() -> None:
    """Import what (c) uses, so that imports are not measured."""
    for name in ("equiv.config", "equiv.sampling", "equiv.traffic", "equiv.traffic.redact"):
        importlib.import_module(name)


def _equiv_call(path: str) -> tuple[Any, Any]:
    """(c): read_traffic -> stratified_sample with the arguments ``equiv.pipeline._prepare`` passes."""
    from equiv.config import Settings
    from equiv.sampling import stratified_sample
    from equiv.traffic import ReadStats, read_traffic
    from equiv.traffic.redact import load_redactor

    settings = Settings()  # equiv.toml's defaults
    since = None
    traffic = path
    redactor = load_redactor(settings.redact)
    read_stats = ReadStats()
    records = read_traffic(
        traffic,
        prompt_type_field=settings.prompt_type_field,
        skip_invalid=settings.skip_invalid,
        stats=read_stats,
        since=since,
        format=settings.format,
        where=settings.where,
        redact=redactor,
    )
    sample = stratified_sample(
        records,
        per_type=settings.per_type,
        seed=settings.seed,
        per_type_of={t: ts.per_type for t, ts in settings.type_settings.items() if ts.per_type is not None},
        types=settings.types,
        require_response=settings.baseline_source == "logged",
    )
    return sample, read_stats


def _child(kind: str, path: str) -> dict[str, Any]:
    """Run one measurement in this (fresh) process."""
    extra: dict[str, Any] = {}
    if kind == "bare":
        import orjson

        import_mb = _peak_mb()
        wall, cpu = time.perf_counter(), _cpu()
        n = 0
        with open(path, "rb") as f:
            for line in f:
                orjson.loads(line)
                n += 1
    elif kind == "pandas":
        import pandas

        import_mb = _peak_mb()
        wall, cpu = time.perf_counter(), _cpu()
        df = pandas.read_json(path, lines=True)
        n = len(df)
    elif kind in ("equiv", "equiv1"):
        if kind == "equiv1":
            os.environ["EQUIV_READ_WORKERS"] = "1"  # one core: the file read in one pass
        _import_equiv()
        import_mb = _peak_mb()
        wall, cpu = time.perf_counter(), _cpu()
        sample, stats = _equiv_call(path)
        n = stats.read
        extra = {
            "types": len(sample.volume),
            "sampled": sample.n_records,
            "records_seen": sum(sample.records_seen.values()),
            "clusters_seen": sum(sample.clusters_seen.values()),
            "skipped": {**dict(stats.skipped), **sample.skipped},
            "weight_max": max(sample.weight.values(), default=0),
            "workers_peak_mb": _children_peak_mb(),
        }
    elif kind == "digest":
        from equiv.config import Settings
        from equiv.traffic import file_digest

        settings = Settings()
        import_mb = _peak_mb()
        wall, cpu = time.perf_counter(), _cpu()
        file_digest(path, since=None, where=settings.where, prompt_type_field=settings.prompt_type_field)
        n = 0
    else:
        raise SystemExit(f"unknown child {kind!r}")
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": _cpu() - cpu,
        "peak_mb": _peak_mb(),
        "import_mb": import_mb,
        "records": n,
        **extra,
    }


def _run_child(kind: str, path: Path, mem_cap_gb: float) -> dict[str, Any] | str:
    """The child's figures, or why it has none. Its address space is capped (RLIMIT_AS) at ``mem_cap_gb``, so
    that pandas on a large file fails with MemoryError instead of waking the OOM killer on a shared machine."""
    cap = int(mem_cap_gb * 1e9)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True, preexec_fn=limit
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        if "MemoryError" in proc.stderr:
            return f"MemoryError: needs more than the {mem_cap_gb:.1f} GB cap (--mem-cap-gb)"
        return f"failed ({tail[:100]})" if proc.returncode > 0 else f"killed by signal {-proc.returncode}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _default_cap_gb() -> float:
    """60% of the memory available now (the machine may be shared), else 8 GB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return round(int(line.split()[1]) * 1024 * 0.6 / 1e9, 1)
    except OSError:
        pass
    return 8.0


# ---------------------------------------------------------------------------------------------- profile

# parts of (c), by the cumulative time of the function doing each; indented ones are inside the one above
_PARTS = [
    (0, "JSON parsing (orjson, else json; the long-number guard)", "jsontext.py", "_parse_json_line", None),
    (0, "format detection, first row of a file and full-path rows", "detect.py", "detect_format", None),
    (0, "typed check of a usual native line: msgspec decoding (_typed_native)", "typed.py", "_typed_native", None),
    (1, "timestamps (_timestamp)", "fields.py", "_timestamp", "_typed_native"),
    (0, "fast check of a usual native row (_fast_native)", "native.py", "_fast_native", None),
    (1, "timestamps (_timestamp)", "fields.py", "_timestamp", "_fast_native"),
    (0, "full path: field checks -> TrafficRecord fields (_from_native)", "native.py", "_from_native", None),
    (1, "messages (_check_messages)", "fields.py", "_check_messages", "_from_native"),
    (1, "params: SamplingParams (_params)", "fields.py", "_params", "_from_native"),
    (1, "ids (_record_id: sha256 of the messages if none)", "fields.py", "_record_id", "_from_native"),
    (1, "timestamps (_timestamp)", "fields.py", "_timestamp", "_from_native"),
    (1, "usage (_usage)", "fields.py", "_usage", "_from_native"),
    (1, "prompt-type lookup (_prompt_type)", "fields.py", "_prompt_type", "_from_native"),
    (0, "pydantic TrafficRecord.model_validate (SamplingParams again)", "main.py", "model_validate", "_to_record"),
    (0, "cluster key: json.dumps + sha256 (cluster_id)", "sampling.py", "cluster_id", None),
    (0, "cluster rank: sha256 (cluster_rank)", "sampling.py", "cluster_rank", None),
    (0, "bottom-k: rank sha256, heap, kept, seen (_BottomK.offer_head)", "sampling.py", "offer_head", None),
]


def _profile(path: Path) -> None:
    """cProfile of (c) in this process: the top functions, and the share of each part of the work."""
    import cProfile
    import pstats

    _import_equiv()
    prof = cProfile.Profile()
    prof.enable()
    _equiv_call(str(path))
    prof.disable()
    st = pstats.Stats(prof)
    total = max(st.total_tt, 1e-9)  # type: ignore[attr-defined]
    rows = st.stats  # type: ignore[attr-defined]  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)

    def cum(file_end: str, name: str, caller: str | None = None) -> tuple[float, int]:
        """Cumulative time and calls of a function (only the calls made by ``caller``, if given)."""
        t, calls = 0.0, 0
        for (f, _, n), (_, nc, _, ct, callers) in rows.items():
            if n != name or not f.endswith(file_end):
                continue
            if caller is None:
                t, calls = t + ct, calls + nc
            else:
                for (_, _, cn), (_, cnc, _, cct) in callers.items():
                    if cn == caller:
                        t, calls = t + cct, calls + cnc
        return t, calls

    print(f"\nprofile of (c) under cProfile: {total:.1f}s in all (cProfile slows Python-level code most)")
    print("  top functions by own time:")
    top = sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:22]
    for (f, line, name), (_, nc, tt, ct, _) in top:
        where = f"{Path(f).parent.name}/{Path(f).name}:{line}" if line else "~"
        print(f"    {tt:6.2f}s {100 * tt / total:5.1f}%  cum {ct:6.2f}s  {nc:>9,} calls  {name}  ({where})")
    print("  parts (cumulative time of the function doing each; indented: inside the part above):")
    accounted = 0.0
    for depth, label, file_end, name, caller in _PARTS:
        t, calls = cum(file_end, name, caller)
        accounted += t if depth == 0 else 0.0
        print(f"    {'  ' * depth}{100 * t / total:5.1f}%  {t:6.2f}s  {calls:>9,} calls  {label}")
    rest = total - accounted
    print(f"    {100 * rest / total:5.1f}%  {rest:6.2f}s  the rest: line reading, the generators _jsonl_rows and")
    print("                              _records, _sample_light's loop (cluster key: orjson + sha256; volume,")
    print("                              first/last), building the kept records")


# ---------------------------------------------------------------------------------------------- main


def _fmt(label: str, r: dict[str, Any] | str, records: int) -> str:
    if isinstance(r, str):
        return f"{label:<40} {r}"
    rate = records / r["wall_s"] if r["wall_s"] else float("inf")
    return (
        f"{label:<40} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {rate:12,.0f} {r['peak_mb']:10,.0f} {r['import_mb']:10,.0f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "equiv-bench-traffic")
    ap.add_argument("--only", default="a,b,c,d", help="which measurements, e.g. a,c (default: a,b,c,d)")
    ap.add_argument("--profile", action="store_true", help="also profile (c) with cProfile (in a child)")
    ap.add_argument(
        "--mem-cap-gb",
        type=float,
        help="address-space cap of each child, so that pandas fails with MemoryError rather than waking the OOM "
        "killer (default: 60%% of the memory available)",
    )
    ap.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--profile-child", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    if args.profile_child:
        _profile(Path(args.profile_child))
        return

    try:
        import orjson
    except ImportError:
        raise SystemExit("bench_traffic needs orjson: pip install orjson") from None
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"native-{args.records}-v{GEN_VERSION}.jsonl"
    if path.exists():
        how = "cached"
    else:
        t = time.perf_counter()
        generate(path, args.records)
        how = f"generated in {time.perf_counter() - t:.0f}s"
    size = path.stat().st_size
    with path.open("rb") as f:  # warm-up: every measurement reads from the page cache
        while f.read(1 << 24):
            pass
    try:
        import pandas

        pandas_version = pandas.__version__
    except ImportError:
        pandas_version = None
    import pydantic

    print(
        f"traffic: {args.records:,} native records, {size / 1e6:,.0f} MB ({size / args.records:,.0f} B/record), {how}"
    )
    print(f"  {path}")
    print(
        f"python {sys.version.split()[0]}, orjson {orjson.__version__}, pydantic {pydantic.VERSION}, "
        f"pandas {pandas_version or 'not installed'}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    cap_gb = args.mem_cap_gb or _default_cap_gb()
    print(f"each measurement in a fresh child process, address space capped at {cap_gb:.1f} GB")
    print(f"{'':<40} {'wall s':>8} {'CPU s':>8} {'records/s':>12} {'peak MB':>10} {'imports MB':>10}")
    only = set(args.only.split(","))
    res: dict[str, dict[str, Any] | str] = {}
    for key, kind, label in (
        ("a", "bare", "(a) for line in f: orjson.loads(line)"),
        ("b", "pandas", "(b) pandas.read_json(path, lines=True)"),
        ("c", "equiv", "(c) stratified_sample(read_traffic(..))"),
        ("c1", "equiv1", "(c1) the same on one core"),
        ("d", "digest", "(d) file_digest (_prepare's other pass)"),
    ):
        if key.rstrip("1") not in only:
            continue
        if kind == "pandas" and pandas_version is None:
            res[key] = "not installed"
        else:
            res[key] = _run_child(kind, path, cap_gb)
        print(_fmt(label, res[key], args.records), flush=True)

    a, c = res.get("a"), res.get("c")
    if isinstance(c, dict):
        print(
            f"(c) read {c['records']:,} records, {c['types']} prompt-types, sampled {c['sampled']:,} "
            f"(largest weight {c['weight_max']}); {c['records_seen']:,} records with a response are "
            f"{c['clusters_seen']:,} distinct prompts; skipped: {c['skipped'] or 'none'}"
        )
        rss_ok = "met" if c["peak_mb"] <= RSS_TARGET_MB else "MISSED"
        line = f"(c) peak RSS {c['peak_mb']:.0f} MB (target <= {RSS_TARGET_MB:.0f} MB: {rss_ok})"
        if c.get("workers_peak_mb"):
            line += f", each range reader it started at most {c['workers_peak_mb']:.0f} MB"
        if isinstance(a, dict):
            ratio = c["wall_s"] / a["wall_s"]
            ok = "met" if ratio <= TIME_TARGET else "MISSED"
            line = (
                f"(c)/(a): wall {ratio:.1f}x (target <= {TIME_TARGET}x: {ok}), "
                f"CPU {c['cpu_s'] / a['cpu_s']:.1f}x; " + line
            )
        print(line)
        d = res.get("d")
        if isinstance(d, dict):
            print(f"_prepare as a whole also hashes the file: (c)+(d) = {c['wall_s'] + d['wall_s']:.1f}s wall")
    if args.profile:
        proc = subprocess.run([sys.executable, __file__, "--profile-child", str(path)], capture_output=True, text=True)
        print(proc.stdout.rstrip() if proc.returncode == 0 else f"profile failed: {proc.stderr.strip()[-300:]}")


if __name__ == "__main__":
    main()
