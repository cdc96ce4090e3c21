"""compare(settings) = sample -> generate -> judge -> analyze -> write. Never prints: reports via on_event."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from equiv.analyze import Analysis, analyze_run, pair_cluster
from equiv.config import Settings
from equiv.errors import AbortedError, InputError
from equiv.judging.pairwise import (
    LOCAL_JUDGE_CLOSE,
    LOCAL_JUDGE_PARAMS,
    LOCAL_JUDGE_PREFILL,
    Judge,
    degrade,
    judge_params,
)
from equiv.judging.prompt import find_template, template_hash, unjudgeable
from equiv.llm import answer, client
from equiv.llm.cache import CallCache, call_key, sibling_call_files
from equiv.llm.client import CallError, ModelSpec
from equiv.llm.runner import Runner
from equiv.local import is_local
from equiv.local.server import current as current_local_models
from equiv.local.server import serving as serve_local
from equiv.sampling import Sample, cluster_rank, stratified_sample
from equiv.schema import Check, Pair, Side, TrafficRecord, Verdict
from equiv.store import CALLS, RunDir, find_run, new_run_id, utc_now
from equiv.traffic import ReadStats, file_digest, read_traffic

Event = Callable[[str, dict[str, Any]], None]


@dataclass
class RunResult:
    run_dir: Path
    verdict: Verdict
    aborted: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Models:
    baseline: ModelSpec
    candidate: ModelSpec
    judge: ModelSpec


def resolve_models(settings: Settings) -> Models:
    """Every model's price and key are checked before anything else happens (exit 2 if missing)."""
    if not settings.baseline or not settings.candidate:
        raise InputError("name both models: --baseline MODEL --candidate MODEL (or baseline/candidate in the config)")
    if settings.baseline == settings.candidate:
        raise InputError(f"baseline and candidate are the same model ({settings.baseline}): nothing to compare")
    specs = Models(
        baseline=client.resolve_model(settings.baseline, settings),
        candidate=client.resolve_model(settings.candidate, settings),
        judge=client.resolve_model(settings.judge, settings),
    )
    for name in {settings.baseline, settings.candidate, settings.judge}:
        settings.api_key(name)  # raises if its api_key_env is named but unset
    # a key litellm would read from the environment and cannot find: exit 2 now, naming it (the logged
    # baseline is never called, so its key is not needed)
    called = [specs.candidate, specs.judge] + ([specs.baseline] if settings.baseline_source == "rerun" else [])
    client.check_credentials(called, settings)
    return specs


def run_key(settings: Settings, traffic_digest: str, template_digest: str, since: datetime | None = None) -> str:
    """A short hash of what defines the run: same command -> same key -> resume."""
    names = (settings.baseline, settings.candidate, settings.judge)
    models = {m: settings.model_settings(m).model_dump() for m in names if m is not None}
    window = {"since": since.isoformat()} if since is not None else {}  # absent -> keys of older runs unchanged
    blob = json.dumps(
        {
            **window,
            "traffic": traffic_digest,
            "baseline": settings.baseline,
            "candidate": settings.candidate,
            "judge": settings.judge,
            "template": template_digest,
            "per_type": settings.per_type,
            "types": sorted(settings.types) if settings.types else None,
            "seed": settings.seed,
            "baseline_source": settings.baseline_source,
            "samples_per_prompt": settings.samples_per_prompt,
            "prompt_type_field": settings.prompt_type_field,
            "judge_check": settings.judge_check,
            "models": models,
            # a run directory holds one verdict: another margin, alpha ... is another run (which buys
            # nothing: the folder's calls are shared), never a silent rewrite of the first one's verdict
            "analysis": {
                k: getattr(settings, k)
                for k in ("margin", "alpha", "correction", "ci", "bootstrap", "judge_calibration")
            },
            "max_tokens_default": settings.max_tokens_default,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _pair_id(record: TrafficRecord, k: int, samples: int) -> str:
    return record.id if samples == 1 else f"{record.id}#s{k}"


def _cluster(sample: Sample, record: TrafficRecord) -> str:
    """The record's cluster (SPEC "Clusters"): the sampling's, computed from messages and params."""
    return sample.cluster.get(record.id) or record.id


def _weight(sample: Sample, record: TrafficRecord, samples: int) -> float:
    """The records of traffic a pair stands for: its cluster's count, shared by the prompt's samples."""
    return sample.weight.get(record.id, 1) / samples


def _estimate(
    work: list[tuple[TrafficRecord, int]], m: Models, settings: Settings, n_checks: int, cache: CallCache | None = None
) -> float:
    """A rough upper-leaning estimate of what the evaluation will spend, printed before any call.

    A prompt whose candidate answer is already in the folder's call cache (an earlier run bought it) is
    counted as free: its judge calls were bought with it, so following INCONCLUSIVE's advice is priced
    at the new prompts only."""
    total = 0.0
    for rec, k in work:
        if cache is not None:
            sent = client.with_output_limit(dict(rec.params), settings.max_tokens_default)
            if cache.get(call_key(m.candidate.call_model, m.candidate.api_base, rec.messages, sent, k)) is not None:
                continue
        prompt = sum(len(json.dumps(msg.get("content", ""))) for msg in rec.messages) // 4 + 8
        out = rec.usage.completion_tokens if rec.usage else (len(rec.response or "") // 4 + 1 if rec.response else 300)
        total += m.candidate.cost(prompt, out)
        if settings.baseline_source == "rerun":
            total += m.baseline.cost(prompt, out)
        total += 2 * m.judge.cost(prompt + 2 * out + 250, 60)
    per_pair = total / max(1, len(work))
    return total + n_checks * per_pair * 0.8


def _logged_side(rec: TrafficRecord, spec: ModelSpec) -> Side:
    """The baseline as logged, priced as the --baseline model from logged usage or counted tokens."""
    if rec.usage is not None:
        pt, ct = rec.usage.prompt_tokens, rec.usage.completion_tokens
    else:
        pt = client.count_tokens(spec, messages=rec.messages)
        ct = client.count_tokens(spec, text=rec.response or "")
    return Side(
        model=spec.name,
        source="logged",
        output=rec.response or "",
        prompt_tokens=pt,
        completion_tokens=ct,
        cost_usd=spec.cost(pt, ct),
    )


def _run_side(comp: Any) -> Side:
    return Side(
        model=comp.model,
        source="run",
        output=comp.output,
        prompt_tokens=comp.prompt_tokens,
        completion_tokens=comp.completion_tokens,
        cost_usd=comp.cost_usd,
    )


def check_sample(pairs: list[Pair], settings: Settings) -> list[Pair]:
    """Per prompt-type: 10% of its prompts (at least 10, all if fewer), chosen reproducibly and nested.

    The prompts with the smallest seeded cluster hash (the order sampling uses), so a larger per_type
    checks a superset of a smaller one's checks and buys only the new ones. One pair per prompt: with
    --samples-per-prompt k the k pairs of a prompt share the logged baseline answer, so checking two of
    them would judge the same comparison twice and count it twice.
    """
    by_type: dict[str, dict[str, Pair]] = {}
    for p in sorted(pairs, key=lambda p: p.pair_id):
        if p.error is None and p.baseline is not None and (p.baseline.output or "").strip():
            by_type.setdefault(p.prompt_type, {}).setdefault(pair_cluster(p), p)
    chosen: list[Pair] = []
    for t in sorted(by_type):
        ranked = sorted(by_type[t].items(), key=lambda kv: (cluster_rank(settings.seed, t, kv[0]), kv[0]))
        n = max(settings.judge_check_min, math.ceil(settings.judge_check_fraction * len(ranked)))
        chosen += sorted((p for _, p in ranked[:n]), key=lambda p: p.pair_id)
    return chosen


class _Work:
    """The async part of one run: pairs, then judge checks, appended to the run directory as they finish."""

    def __init__(
        self, settings: Settings, m: Models, run: RunDir, runner: Runner, judge: Judge, on_event: Event, sample: Sample
    ):
        self.s, self.m, self.run, self.runner, self.judge, self.on_event = settings, m, run, runner, judge, on_event
        self.sample = sample

    async def pair(self, rec: TrafficRecord, k: int) -> Pair:
        pid = _pair_id(rec, k, self.s.samples_per_prompt)
        pair = Pair(
            pair_id=pid,
            prompt_type=rec.prompt_type,
            messages=rec.messages,
            timestamp=rec.timestamp,
            prompt_id=_cluster(self.sample, rec),
            weight=_weight(self.sample, rec, self.s.samples_per_prompt),
        )
        params = dict(rec.params)
        blind = unjudgeable(rec.messages)  # image parts: the text judge cannot see the prompt, so buy nothing
        if blind is not None:
            pair.error = blind
            return pair
        try:
            if self.s.baseline_source == "logged":
                pair.baseline = _logged_side(rec, self.m.baseline)
                cand = await self.runner.call(self.m.candidate, rec.messages, params, sample=k)
            else:
                base, cand = await asyncio.gather(
                    self.runner.call(self.m.baseline, rec.messages, params, sample=k),
                    self.runner.call(self.m.candidate, rec.messages, params, sample=k),
                )
                pair.baseline = _run_side(base).model_copy(update=answer.side_extras(base))
            pair.candidate = _run_side(cand).model_copy(update=answer.side_extras(cand))  # tool calls, filter
        except CallError as err:
            pair.error = f"generation failed: {err.message}"
            return pair
        judgments, failures = await self.judge.both_orders(
            rec.messages, pair.baseline.output or "", pair.candidate.output or "", ("baseline_first", "candidate_first")
        )
        pair.judgments, pair.judge_failures = judgments, failures
        if not judgments:
            pair.error = "judge failed in both orders: " + "; ".join(sorted({f.error for f in failures}))
        return pair

    async def check_record(self, rec: TrafficRecord, k: int) -> Check:
        """The judge check of a pair not yet run: its baseline answer is logged, or (rerun) the same call
        as the pair's, shared in flight and cached, so it is bought once."""
        pid = _pair_id(rec, k, self.s.samples_per_prompt)
        pair = Pair(pair_id=pid, prompt_type=rec.prompt_type, messages=rec.messages)
        blind = unjudgeable(rec.messages)  # the judge cannot see the prompt: no baseline re-run bought for it
        if blind is not None:
            return Check(pair_id=pid, prompt_type=rec.prompt_type, error=blind)
        if self.s.baseline_source == "logged":
            return await self.check(pair, rec.response or "")
        try:
            base = await self.runner.call(self.m.baseline, rec.messages, dict(rec.params), sample=k)
        except CallError as err:
            return Check(pair_id=pid, prompt_type=rec.prompt_type, error=f"baseline failed: {err.message}")
        if not base.output.strip():
            return Check(pair_id=pid, prompt_type=rec.prompt_type, error="empty baseline answer: nothing to degrade")
        if base.finish_reason == answer.CONTENT_FILTER:
            return Check(
                pair_id=pid,
                prompt_type=rec.prompt_type,
                error="baseline answer blocked by the provider's content filter: nothing to degrade",
            )
        return await self.check(pair, base.output)

    async def check(self, pair: Pair, intact: str) -> Check:
        judgments, failures = await self.judge.both_orders(
            pair.messages, intact, degrade(intact), ("intact_first", "degraded_first")
        )
        chk = Check(pair_id=pair.pair_id, prompt_type=pair.prompt_type, judgments=judgments, judge_failures=failures)
        if len(judgments) < 2:
            chk.error = "judge check not readable in both orders"
        return chk

    async def drain(self, items: list[tuple[Any, str, str]]) -> None:
        """Run (coroutine, file, event kind) items, appending each result as it finishes; on abort, cancel the rest.

        At most `concurrency` items are open at once, in list order, so pairs finish (and are saved)
        steadily instead of every pair's first call being bought before any pair is judged.
        """
        gate = asyncio.Semaphore(self.s.concurrency)

        async def gated(coro: Any, file: str, kind: str) -> tuple[Any, str, str]:
            async with gate:
                return await coro, file, kind

        tasks = [asyncio.ensure_future(gated(*item)) for item in items]
        try:
            for fut in asyncio.as_completed(tasks):
                record, file, kind = await fut
                self.run.append(file, record)
                self.on_event(kind, {"prompt_type": record.prompt_type, "error": record.error})
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for coro, _file, _kind in items:
                coro.close()  # a coroutine cancelled before it started was never awaited: close it quietly


@dataclass
class _Prepared:
    """What a comparison checks and reads before it touches a run directory: no call made, no file written."""

    traffic: Path
    models: Models
    sample: Sample
    read_stats: ReadStats
    tpl_text: str
    tpl_hashes: dict[str, str]
    key: str
    run_path: Path


def _prepare(
    traffic: str | Path,
    settings: Settings,
    *,
    out: str | Path,
    resume: str | Path | None,
    fresh: bool,
    since: datetime | None,
) -> _Prepared:
    """Models, prices, keys, template, traffic and sample checked (InputError, exit 2), and the run directory chosen."""
    m = resolve_models(settings)
    tpl_path = find_template(settings.judge_template, settings.base_dir)
    tpl_text = tpl_path.read_text(encoding="utf-8")
    tpl_hash = template_hash(tpl_path)
    traffic = Path(traffic)
    digest = file_digest(traffic)
    read_stats = ReadStats()
    records = read_traffic(
        traffic,
        prompt_type_field=settings.prompt_type_field,
        skip_invalid=settings.skip_invalid,
        stats=read_stats,
        since=since,
    )
    sample: Sample = stratified_sample(
        records,
        per_type=settings.per_type,
        seed=settings.seed,
        types=settings.types,
        require_response=settings.baseline_source == "logged",
    )
    if sample.missing_types:
        raise InputError(
            f"--types names prompt-types not in {traffic}: {', '.join(sample.missing_types)} "
            f"(found: {', '.join(sorted(sample.volume)) or 'none'})"
        )
    if not any(sample.records.values()):
        why = ", ".join(f"{n} {r}" for r, n in {**dict(read_stats.skipped), **dict(sample.skipped)}.items())
        window = f" since {since.isoformat(timespec='seconds')}" if since is not None else ""
        raise InputError(f"{traffic}: no usable records to compare{window}" + (f" (skipped: {why})" if why else ""))

    key = run_key(settings, digest, tpl_hash, since)
    out = Path(out)
    if resume is not None:
        run_path = Path(resume)
        if not run_path.is_dir():
            raise InputError(f"--resume {resume}: no such run directory")
    else:
        found = None if fresh else find_run(out, key)
        run_path = found or out / new_run_id(key)
        later = 0
        while found is None and run_path.exists():  # a fresh run never lands in an older run's directory:
            later += 1  # the next free second (ids sort by time; no waiting for the clock)
            run_path = out / new_run_id(key, later_s=later)
    return _Prepared(
        traffic=traffic,
        models=m,
        sample=sample,
        read_stats=read_stats,
        tpl_text=tpl_text,
        tpl_hashes={tpl_path.name: tpl_hash},
        key=key,
        run_path=run_path,
    )


# What a run writes before its first record (and may be removed when it fails before one); anything else is kept.
_BOOKKEEPING = (".lock", "run.json")


def _discard_if_unused(path: Path, parent_created: bool) -> None:
    """Remove a run directory this call created when the run failed before its first record.

    Only when every file in it is bookkeeping (the lock, run.json, a temporary file) or empty: a directory
    holding any pair, check, call or unknown file is kept as it is.
    """
    try:
        entries = list(path.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_dir() or not (
            entry.name in _BOOKKEEPING or entry.name.endswith(".tmp") or entry.stat().st_size == 0
        ):
            return
    try:
        for entry in entries:
            entry.unlink(missing_ok=True)
        path.rmdir()
        if parent_created:
            path.parent.rmdir()  # only if empty: OSError otherwise
    except OSError:
        pass


async def _run_prepared(prep: _Prepared, settings: Settings, emit: Event) -> RunResult:
    with serve_local(settings):  # local/ models: weights checked now, servers stopped on exit, error or Ctrl-C
        created, parent_created = not prep.run_path.exists(), not prep.run_path.parent.exists()
        run = RunDir(prep.run_path)
        run.lock()
        ok = False
        try:
            result = await _execute(
                prep.traffic,
                settings,
                prep.models,
                run,
                prep.sample,
                prep.read_stats,
                prep.tpl_text,
                prep.tpl_hashes,
                prep.key,
                emit,
            )
            ok = True
            return result
        finally:
            run.unlock()
            if created and not ok:
                _discard_if_unused(prep.run_path, parent_created)


def _quiet(kind: str, data: dict[str, Any]) -> None:
    return None


def _run_in_thread(make: Callable[[], Coroutine[Any, Any, RunResult]]) -> RunResult:
    """`asyncio.run(make())` in a worker thread, for a caller whose thread already runs an event loop.

    The caller blocks until the run is done. Ctrl-C in the caller (a notebook's interrupt) cancels the run
    as Ctrl-C does in the CLI: it stops buying, keeps what is done and returns its (aborted) result.
    """
    state: dict[str, Any] = {}
    started, done = threading.Event(), threading.Event()

    async def main() -> RunResult:
        state["loop"], state["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await make()

    def target() -> None:
        try:
            state["result"] = asyncio.run(main())
        except BaseException as err:  # handed to the caller's thread
            state["error"] = err
        finally:
            started.set()
            done.set()

    worker = threading.Thread(target=target, name="equiv-compare", daemon=True)
    worker.start()
    try:
        done.wait()
    except KeyboardInterrupt:
        started.wait()
        loop, task = state.get("loop"), state.get("task")
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop just finished
                pass
        done.wait()
        if "result" not in state:
            raise
    worker.join()
    if "error" in state:
        err = state["error"]
        if isinstance(err, asyncio.CancelledError):
            raise KeyboardInterrupt from None
        raise err
    result: RunResult = state["result"]
    return result


def compare(
    traffic: str | Path,
    settings: Settings,
    *,
    out: str | Path = "reports",
    resume: str | Path | None = None,
    fresh: bool = False,
    on_event: Event | None = None,
    since: datetime | None = None,
) -> RunResult:
    """Run (or resume) a comparison and write its run directory. Raises EquivError on bad input/abort.

    Works where an event loop is already running (a notebook, an async app): the run then gets its own loop
    in a worker thread and this call blocks until it is done. From async code, `await acompare(...)`.
    """
    prep = _prepare(traffic, settings, out=out, resume=resume, fresh=fresh, since=since)
    emit: Event = on_event or _quiet
    if _loop_running():
        return _run_in_thread(lambda: _run_prepared(prep, settings, emit))
    return asyncio.run(_run_prepared(prep, settings, emit))


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def acompare(
    traffic: str | Path,
    settings: Settings,
    *,
    out: str | Path = "reports",
    resume: str | Path | None = None,
    fresh: bool = False,
    on_event: Event | None = None,
    since: datetime | None = None,
) -> RunResult:
    """`compare` as a coroutine, on the caller's event loop (reading and sampling the traffic in a thread)."""
    prep = await asyncio.to_thread(_prepare, traffic, settings, out=out, resume=resume, fresh=fresh, since=since)
    return await _run_prepared(prep, settings, on_event or _quiet)


async def _execute(
    traffic: Path,
    settings: Settings,
    m: Models,
    run: RunDir,
    sample: Sample,
    read_stats: ReadStats,
    tpl_text: str,
    tpl_hashes: dict[str, str],
    key: str,
    emit: Event,
) -> RunResult:
    info = run.read_run_info()
    resumed = bool(info)
    if resumed and info.get("key") not in (None, key):
        raise InputError(
            f"{run.path}: this run directory belongs to a different run (key {info.get('key')}, "
            f"this command's key is {key}); use --fresh or another --out"
        )
    old_pairs = [p for p in run.load_pairs() if p.error is None]
    run.rewrite("pairs.jsonl", old_pairs)  # failed pairs are redone (their finished calls are cached)
    old_checks = [c for c in run.load_checks() if c.error is None]
    run.rewrite("checks.jsonl", old_checks)
    done = {p.pair_id for p in old_pairs}
    work = [
        (rec, k)
        for recs in sample.records.values()
        for rec in recs
        for k in range(settings.samples_per_prompt)
        if _pair_id(rec, k, settings.samples_per_prompt) not in done
    ]
    n_total = sum(len(r) for r in sample.records.values()) * settings.samples_per_prompt

    # The judge check's sample is known before any call (it needs only baseline answers), so checks run
    # interleaved with the pairs instead of in a second, slower phase after them.
    # a prompt the judge cannot see (image parts) fails as a pair, so it is no judge check either
    planned = old_pairs + [
        Pair(
            pair_id=_pair_id(r, k, settings.samples_per_prompt),
            prompt_type=r.prompt_type,
            prompt_id=_cluster(sample, r),
            baseline=Side(model="", output=r.response if settings.baseline_source == "logged" else "x"),
        )
        for r, k in work
        if unjudgeable(r.messages) is None
    ]
    check_plan = check_sample(planned, settings) if settings.judge_check else []
    to_check = {p.pair_id for p in check_plan}

    info.update(
        run_id=run.run_id,
        key=key,
        traffic=str(traffic),
        command="compare",
        settings=settings.model_dump(mode="json", exclude={"routes", "models", "base_dir"}),
        models={
            s.name: {
                "litellm_model": s.call_model,
                "api_base": client.redact(s.api_base) if s.api_base else None,  # a key in a URL: never
                "input_cost_per_mtok": s.input_per_token * 1e6,
                "output_cost_per_mtok": s.output_per_token * 1e6,
            }
            for s in (m.baseline, m.candidate, m.judge)
        },
        template_hashes=tpl_hashes,
        versions=client.package_versions(),
        sample={
            "per_type": {t: len(r) for t, r in sample.records.items()},
            "volume": sample.volume,
            "skipped": dict(sample.skipped),
            "invalid_skipped": read_stats.skipped_total(),
        },
        monthly_volume=sample.monthly_volume(),
        judge_checks_planned=dict(Counter(p.prompt_type for p in check_plan)) if settings.judge_check else None,
    )
    local_models = current_local_models()
    if local_models is not None:
        info["local_models"] = local_models.describe()
    info.setdefault("started_at", utc_now())
    if resumed:
        info.setdefault("resumed_at", []).append(utc_now())
    run.write_run_info(info)

    cache = CallCache(run.file(CALLS), sibling_call_files(run.path))  # every run under --out shares its calls
    runner = Runner(
        cache=cache,
        concurrency=settings.concurrency,
        max_retries=settings.max_retries,
        max_spend_usd=settings.max_spend_usd,
        api_keys={n: settings.api_key(n) for n in {m.baseline.name, m.candidate.name, m.judge.name}},
        default_max_tokens=settings.max_tokens_default,
        on_event=emit,
        seed=settings.seed,
    )
    local_judge = is_local(m.judge.name)
    judge = Judge(
        runner=runner,
        spec=m.judge,
        template=tpl_text,
        retries=settings.judge_retries,
        params=judge_params(
            client.supports_json_schema(m.judge) and not local_judge, LOCAL_JUDGE_PARAMS if local_judge else None
        ),
        sequential=local_judge,
        prefill=LOCAL_JUDGE_PREFILL if local_judge else "",
        close=LOCAL_JUDGE_CLOSE if local_judge else "",
    )
    w = _Work(settings, m, run, runner, judge, emit, sample)
    checked = {c.pair_id for c in old_checks}
    expected_checks = len(to_check - checked)  # on a resume, only the checks still to run
    emit(
        "estimate",
        {
            "usd": _estimate(work, m, settings, expected_checks, cache),
            "pairs": len(work),
            "done": len(done),
            "total": n_total,
            "checks": expected_checks,
            "spent_before": runner.spent,
            "cap": settings.max_spend_usd,
            "run_dir": str(run.path),
            "resumed": resumed,
        },
    )
    aborted: str | None = None
    try:
        items: list[tuple[Any, str, str]] = []
        for p in old_pairs:  # finished pairs whose check did not finish
            if p.pair_id in to_check and p.pair_id not in checked:
                items.append((w.check(p, (p.baseline.output or "") if p.baseline else ""), "checks.jsonl", "check"))
        for rec, k in work:
            pid = _pair_id(rec, k, settings.samples_per_prompt)
            items.append((w.pair(rec, k), "pairs.jsonl", "pair"))
            if pid in to_check and pid not in checked:
                items.append((w.check_record(rec, k), "checks.jsonl", "check"))
        n_checks_done = len(checked & to_check)
        emit(
            "phase",
            {
                "name": "pairs + judge checks" if to_check else "pairs",
                "total": n_total + len(to_check),
                "done": len(done) + n_checks_done,
            },
        )
        await w.drain(items)
    except AbortedError as err:
        aborted = err.message
    except asyncio.CancelledError:  # Ctrl-C (asyncio.run cancels this task): stop buying, report what is done
        aborted = "interrupted (Ctrl-C); finished work is kept: run the same command again to resume"
    finally:
        # calls already sent when the run stopped are paid for: keep their answers (bounded wait)
        await runner.settle(min(10.0, settings.timeout_s))
        cache.close()

    pairs = run.load_pairs()
    checks = run.load_checks() if settings.judge_check else None
    result = analyze_run(
        pairs,
        checks,
        settings,
        run_id=run.run_id,
        baseline=m.baseline.name,
        candidate=m.candidate.name,
        judge=m.judge.name,
        eval_cost_usd=round(cache.total_cost(), 6),
        monthly_volume=sample.monthly_volume(),
        aborted=aborted,
        planned_checks=info.get("judge_checks_planned"),
    )
    verdict = result.verdict
    notes = run_notes(pairs, sample, read_stats, settings)
    verdict.notes.extend(notes)
    info["run_notes"] = notes  # `equiv report` shows them again: they are not in pairs.jsonl
    info.update(
        finished_at=utc_now(),
        eval_cost_usd=round(cache.total_cost(), 6),
        aborted=aborted,
        calls={
            "bought_this_session": runner.stats.calls,
            "cache_hits": runner.stats.cache_hits,
            "retries": runner.stats.retries,
            "errors": dict(runner.stats.errors),
            "faults": dict(runner.stats.faults),
            "max_attempts": runner.stats.max_attempts,
            "backoff_s": round(runner.stats.backoff_s, 3),
        },
    )
    run.write_run_info(info)
    write_reports(run.path, result, pairs, checks, info)
    return RunResult(run_dir=run.path, verdict=verdict, aborted=aborted, info=info)


def run_notes(pairs: list[Pair], sample: Sample, read_stats: ReadStats, settings: Settings) -> list[str]:
    """What the user must know beside the numbers: failures by reason, skipped records, model mismatches."""
    notes = []
    errors = Counter(p.error.split(":")[0] + ": " + p.error.split(":", 1)[-1].strip()[:120] for p in pairs if p.error)
    for reason, n in errors.most_common(5):
        notes.append(f"{n} pair(s) failed: {reason}")
    for reason, n in sample.skipped.items():
        notes.append(f"{n} record(s) skipped: {reason}")
    notes.extend(sample.notes())
    for finish, what in (
        (
            answer.CONTENT_FILTER,
            "were blocked or cut by the provider's content filter (judged as what the user would get)",
        ),
        (
            answer.LENGTH,
            "stopped at their output limit (max_tokens from the traffic, else "
            f"max_tokens_default = {settings.max_tokens_default}, which equiv sends so that the spend "
            "cap holds): they are judged as cut",
        ),
    ):
        for role in ("candidate", "baseline"):
            n = sum(
                1
                for p in pairs
                if (side := getattr(p, role)) is not None and (side.model_extra or {}).get("finish_reason") == finish
            )
            if n:
                notes.append(f"{n} {role} answer(s) {what}")
    if read_stats.skipped_total():
        notes.append(f"{read_stats.skipped_total()} invalid traffic record(s) skipped (--skip-invalid)")
    notes.extend(model_notes(settings))
    if settings.baseline_source == "logged":
        logged = Counter(r.model for recs in sample.records.values() for r in recs if r.model)
        other = [mdl for mdl in logged if mdl != settings.baseline]
        if other:
            notes.append(
                f"logged responses come from {', '.join(sorted(other))}; they are priced as the baseline "
                f"{settings.baseline}"
            )
    return notes


_SIZE_OR_VERSION = re.compile(r"^(v?\d[\w.]*|\d+(\.\d+)?[bmk]|latest|preview|instruct|chat|it|gguf|q\d.*|f16|bf16)$")


def model_family(name: str) -> str:
    """A model's family for the self-preference warning: 'gpt-4o-mini' -> 'gpt', 'local/qwen2.5-coder-1.5b' -> 'qwen'.

    The leading letters of the last path segment (provider prefixes such as openai/ or local/ dropped);
    crude on purpose: a false "same family" costs a line of caution, a missed one a biased verdict.
    """
    last = name.lower().rstrip("/").rsplit("/", 1)[-1]
    m = re.match(r"[a-z]+", last)
    return m.group(0) if m else last


def model_notes(settings: Settings) -> list[str]:
    """Judge self-preference risk and free local models: facts the numbers alone do not show."""
    notes = []
    judge, base, cand = settings.judge, settings.baseline, settings.candidate
    for role, other in (("baseline", base), ("candidate", cand)):
        if not other:
            continue
        if other == judge:
            notes.append(
                f"the judge {judge} is the {role} model itself: it may prefer its own answers; "
                f"use a judge from another model family"
            )
        elif model_family(other) == model_family(judge):
            notes.append(
                f"the judge {judge} shares the {role}'s model family ({model_family(judge)}) with {other}: "
                f"it may prefer that family's answers; use a judge from another family"
            )
    for name in dict.fromkeys(n for n in (base, cand, judge) if n and is_local(n)):
        ms = settings.model_settings(name)
        if ms.input_cost_per_mtok is None or ms.output_cost_per_mtok is None:
            notes.append(
                f"{name} runs on this machine and is priced at $0 (no price in the config): set "
                f'[models."{name}"] input_cost_per_mtok / output_cost_per_mtok to count its hardware'
            )
    return notes


def write_reports(
    folder: Path,
    analysis: Analysis | Verdict,
    pairs: list[Pair],
    checks: list[Check] | None,
    info: dict[str, Any],
    history: list[dict[str, Any]] | None = None,
) -> None:
    """verdict.json, summary.md and report.html, all rebuilt from the analysis (+ the route's history):
    the report shows the analysis's per-pair results, it does not recompute them. Given a Verdict alone,
    the page derives them with the analysis's own functions."""
    from equiv.report.html import write_html
    from equiv.report.markdown import render_markdown
    from equiv.store import write_json_atomic, write_text_atomic

    verdict = analysis.verdict if isinstance(analysis, Analysis) else analysis
    write_json_atomic(folder / "verdict.json", verdict.model_dump(mode="json"))
    write_text_atomic(folder / "summary.md", render_markdown(verdict, info))
    write_html(
        folder / "report.html",
        verdict,
        pairs,
        info,
        checks,
        history,
        analysis=analysis if isinstance(analysis, Analysis) else None,
    )
