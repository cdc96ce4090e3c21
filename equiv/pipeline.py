"""compare(settings) = sample -> generate -> judge -> analyze -> write. Never prints: reports via on_event."""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from equiv.analyze import Analysis, analyze_run, pair_instruments
from equiv.candidates import candidates_named
from equiv.candidates import describe as describe_candidate
from equiv.config import Settings
from equiv.errors import AbortedError, InputError
from equiv.estimate import estimate
from equiv.generate import cluster_of, generate, pair_id, weight_of
from equiv.judging.checks import check_sample, kinds_for
from equiv.judging.labels import labels_from_prompt
from equiv.judging.pairwise import Panel, make_judge
from equiv.judging.perturb import perturb
from equiv.judging.prompt import unjudgeable
from equiv.judging.select import TypeJudging, templates_used
from equiv.judging.select import digest as template_digest
from equiv.judging.select import select as select_templates
from equiv.labels import load_labels
from equiv.llm import answer, client
from equiv.llm.cache import CallCache, sibling_call_files
from equiv.llm.client import CallError
from equiv.llm.runner import Runner
from equiv.local.server import current as current_local_models
from equiv.local.server import serving as serve_local
from equiv.models import Models, resolve_models
from equiv.notes import model_family, model_notes, run_notes
from equiv.runkey import run_key
from equiv.sampling import Sample, stratified_sample
from equiv.schema import Check, Pair, Side, TrafficRecord, Verdict
from equiv.stats.sequential import MIN_PROMPTS, fixed_order
from equiv.store import CALLS, RunDir, find_run, new_run_id, utc_now
from equiv.traffic import ReadStats, file_digest, read_traffic
from equiv.traffic.paths import TrafficPath, traffic_display
from equiv.traffic.redact import Redactor, load_redactor

__all__ = ["RunResult", "acompare", "compare", "model_family", "model_notes", "resolve_models", "write_reports"]

Event = Callable[[str, dict[str, Any]], None]


@dataclass
class RunResult:
    run_dir: Path
    verdict: Verdict
    aborted: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class _Work:
    """The async part of one run: generate -> check -> judge per pair, and the judge checks, appended to
    the run directory as they finish."""

    def __init__(
        self,
        settings: Settings,
        m: Models,
        run: RunDir,
        runner: Runner,
        panels: dict[str, Panel],
        judging: dict[str, TypeJudging],
        on_event: Event,
        sample: Sample,
    ):
        self.s, self.m, self.run, self.runner, self.on_event = settings, m, run, runner, on_event
        self.panels, self.judging, self.sample = panels, judging, sample
        # pairs name their candidate when there are several, or when the one is a [[candidates]] configuration
        self.named = candidates_named(m)

    def _extra(self, prompt_type: str, messages: list[dict[str, Any]], reference: str | None) -> dict[str, str]:
        """The type's judge-prompt variables: the label set, the pair's reference answer, the rubric."""
        j = self.judging[prompt_type]
        labels = j.labels or (tuple(labels_from_prompt(messages) or ()) if j.label_type else ())
        return {"labels": ", ".join(labels), "reference": reference or "", "rubric": j.rubric or ""}

    def _template(self, prompt_type: str, reference: str | None) -> str:
        j = self.judging[prompt_type]
        return (j.reference if reference and j.reference is not None else j.template).text

    def candidate_tag(self, ci: int) -> str | None:
        """The pair-id suffix of candidate `ci`: none for the first (its ids are the records', as the
        judge checks' are), its name for the others."""
        return self.m.candidates[ci][0].name if ci > 0 else None

    async def pair(self, rec: TrafficRecord, k: int, ci: int = 0) -> Pair:
        config, spec = self.m.candidates[ci]
        pair = Pair(
            pair_id=pair_id(rec, k, self.s.samples_per_prompt, self.candidate_tag(ci)),
            prompt_type=rec.prompt_type,
            messages=rec.messages,
            timestamp=rec.timestamp,
            prompt_id=cluster_of(self.sample, rec),
            weight=weight_of(self.sample, rec, self.s.samples_per_prompt),
            reference=rec.reference,
            tools=rec.params.get("tools"),
            candidate_name=config.name if self.named else None,
        )
        blind = unjudgeable(rec.messages)  # image parts: the text judge cannot see the prompt, so buy nothing
        if blind is not None:
            pair.error = blind
            return pair
        try:
            pair.baseline, pair.candidate = await generate(rec, k, self.s, self.m.baseline, spec, self.runner, config)
        except CallError as err:
            pair.error = f"generation failed: {err.message}"
            return pair
        # check: identical answers, or answers that agree under every agreement check, need no judge
        inst = pair_instruments(pair, self.s.checks_for(rec.prompt_type))
        if inst is not None and inst.decided_by is not None:
            pair.decided_by = inst.decided_by
            return pair
        judgments, failures = await self.panels[rec.prompt_type].both_orders(
            rec.messages,
            pair.baseline.output or "",
            pair.candidate.output or "",
            ("baseline_first", "candidate_first"),
            self._template(rec.prompt_type, rec.reference),
            self._extra(rec.prompt_type, rec.messages, rec.reference),
        )
        pair.judgments, pair.judge_failures = judgments, failures
        if not judgments:
            pair.error = "judge failed in both orders: " + "; ".join(sorted({f.error for f in failures}))
        return pair

    async def check_record(self, rec: TrafficRecord, k: int, done: set[str]) -> list[Check]:
        """The judge checks of a pair not yet run: its baseline answer is logged, or (rerun) the same call
        as the pair's, shared in flight and cached, so it is bought once."""
        pid = pair_id(rec, k, self.s.samples_per_prompt)
        pair = Pair(pair_id=pid, prompt_type=rec.prompt_type, messages=rec.messages, reference=rec.reference)
        blind = unjudgeable(rec.messages)  # the judge cannot see the prompt: no baseline re-run bought for it
        if blind is not None:
            return [Check(pair_id=pid, prompt_type=rec.prompt_type, error=blind)]
        if self.s.baseline_source == "logged":
            return await self.check(pair, rec.response or "", done)
        try:
            base = await self.runner.call(self.m.baseline, rec.messages, dict(rec.params), sample=k, redact=True)
        except CallError as err:
            return [Check(pair_id=pid, prompt_type=rec.prompt_type, error=f"baseline failed: {err.message}")]
        if not base.output.strip():
            return [Check(pair_id=pid, prompt_type=rec.prompt_type, error="empty baseline answer: nothing to degrade")]
        if base.finish_reason == answer.CONTENT_FILTER:
            return [
                Check(
                    pair_id=pid,
                    prompt_type=rec.prompt_type,
                    error="baseline answer blocked by the provider's content filter: nothing to degrade",
                )
            ]
        return await self.check(pair, base.output, done)

    async def check(self, pair: Pair, intact: str, done: set[str] = frozenset()) -> list[Check]:  # type: ignore[assignment]
        """Every kind of the type's judge check not yet `done` for this pair; a kind that does not apply to
        this answer (no number to change, not JSON ...) is not bought."""
        t = pair.prompt_type
        j = self.judging[t]
        labels = j.labels or tuple(labels_from_prompt(pair.messages) or ())
        out = []
        for kind in kinds_for(self.s, t):
            if kind in done:
                continue
            degraded = perturb(kind, intact, labels=labels or None, seed_key=pair.pair_id)
            if degraded is None or degraded == intact:
                continue
            judgments, failures = await self.panels[t].both_orders(
                pair.messages,
                intact,
                degraded,
                ("intact_first", "degraded_first"),
                self._template(t, pair.reference),
                self._extra(t, pair.messages, pair.reference),
            )
            chk = Check(pair_id=pair.pair_id, prompt_type=t, kind=kind, judgments=judgments, judge_failures=failures)
            if len({jd.order for jd in judgments}) < 2:
                chk.error = "judge check not readable in both orders"
            out.append(chk)
        return out

    async def drain(self, items: list[tuple[Any, str, str]]) -> None:
        """Run (coroutine, file, event kind) items, appending each result as it finishes; on abort, cancel the rest.

        At most 2 x `concurrency` items are open at once, in list order, so pairs finish (and are saved)
        steadily instead of every pair's first call being bought before any pair is judged. Twice the
        runner's limit, not once: a pair between two of its calls (its candidate answered, its judge calls
        not yet asked) holds no call slot, and with only `concurrency` pairs open such gaps left slots idle
        (about 27.5 calls in flight of 32 against a 200 ms provider, 28.5 at twice; bench_harness.py).
        """
        # --batch: every item at once, so a wave's calls gather into one provider batch (the runner still caps spend)
        gate = asyncio.Semaphore(max(1, len(items)) if self.s.batch else 2 * self.s.concurrency)

        async def gated(coro: Any, file: str, kind: str) -> tuple[Any, str, str]:
            async with gate:
                return await coro, file, kind

        tasks = [asyncio.ensure_future(gated(*item)) for item in items]
        try:
            for fut in asyncio.as_completed(tasks):
                result, file, kind = await fut
                records = result if isinstance(result, list) else [result]
                for record in records:
                    self.run.append(file, record)
                first = records[0] if records else None
                self.on_event(
                    kind,
                    {
                        "prompt_type": first.prompt_type if first is not None else None,
                        "error": next((r.error for r in records if r.error), None),
                    },
                )
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for coro, _file, _kind in items:
                coro.close()  # a coroutine cancelled before it started was never awaited: close it quietly


@dataclass
class _Prepared:
    """What a comparison checks and reads before it touches a run directory: no call made, no file written."""

    traffic: str
    models: Models
    sample: Sample
    read_stats: ReadStats
    redactor: Redactor | None
    judging: dict[str, TypeJudging]
    tpl_hashes: dict[str, str]
    key: str
    run_path: Path


def _prepare(
    traffic: TrafficPath,
    settings: Settings,
    *,
    out: str | Path,
    resume: str | Path | None,
    fresh: bool,
    since: datetime | None,
) -> _Prepared:
    """Models, prices, keys, template, traffic and sample checked (InputError, exit 2), and the run directory chosen."""
    m = resolve_models(settings)
    select_templates(settings, [*settings.type_settings, "__top_level__"])  # a missing template: exit 2 now
    shown = traffic_display(traffic)  # a database URL without its password: what messages and run.json show
    redactor = load_redactor(settings.redact)
    digest = file_digest(traffic, since=since, where=settings.where, prompt_type_field=settings.prompt_type_field)
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
    sample: Sample = stratified_sample(
        records,
        per_type=settings.per_type,
        seed=settings.seed,
        per_type_of={t: ts.per_type for t, ts in settings.type_settings.items() if ts.per_type is not None},
        types=settings.types,
        require_response=settings.baseline_source == "logged",
    )
    if sample.missing_types:
        raise InputError(
            f"--types names prompt-types not in {shown}: {', '.join(sample.missing_types)} "
            f"(found: {', '.join(sorted(sample.volume)) or 'none'})"
        )
    if not any(sample.records.values()):
        why = ", ".join(f"{n} {r}" for r, n in {**dict(read_stats.skipped), **dict(sample.skipped)}.items())
        window = f" since {since.isoformat(timespec='seconds')}" if since is not None else ""
        raise InputError(f"{shown}: no usable records to compare{window}" + (f" (skipped: {why})" if why else ""))

    judging = select_templates(settings, sorted(sample.records))
    with_reference = {t for t, recs in sample.records.items() if any(r.reference for r in recs)}
    key = run_key(settings, digest, template_digest(judging, with_reference), since)
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
        traffic=shown,
        models=m,
        sample=sample,
        read_stats=read_stats,
        redactor=redactor,
        judging=judging,
        tpl_hashes=templates_used(judging, with_reference),
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
                prep.redactor,
                prep.judging,
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
    traffic: TrafficPath,
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
    traffic: TrafficPath,
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
    traffic: str,
    settings: Settings,
    m: Models,
    run: RunDir,
    sample: Sample,
    read_stats: ReadStats,
    redactor: Redactor | None,
    judging: dict[str, TypeJudging],
    tpl_hashes: dict[str, str],
    key: str,
    emit: Event,
) -> RunResult:
    info = run.read_own_run_info(key, "use --fresh or another --out")
    resumed = bool(info)
    old_pairs = [p for p in run.load_pairs() if p.error is None]
    run.rewrite("pairs.jsonl", old_pairs)  # failed pairs are redone (their finished calls are cached)
    old_checks = [c for c in run.load_checks() if c.error is None]
    run.rewrite("checks.jsonl", old_checks)
    done = {p.pair_id for p in old_pairs}
    n_cands = len(m.candidates)
    tags = [c.name if i > 0 else None for i, (c, _) in enumerate(m.candidates)]
    todo = [
        (rec, k, ci)
        for recs in sample.records.values()
        for rec in recs
        for k in range(settings.samples_per_prompt)
        for ci in range(n_cands)
        if pair_id(rec, k, settings.samples_per_prompt, tags[ci]) not in done
    ]
    work = [(rec, k) for rec, k, ci in todo if ci == 0]  # the first candidate's: the judge checks' records
    if n_cands > 1:
        ids = [
            pair_id(rec, k, settings.samples_per_prompt, tag)
            for recs in sample.records.values()
            for rec in recs
            for k in range(settings.samples_per_prompt)
            for tag in tags
        ]
        if len(set(ids)) < len(ids):
            clash = next(i for i in ids if ids.count(i) > 1)
            raise InputError(
                f"pair id {clash} would name two pairs (a record id ends with @ and a candidate's name): "
                "rename that candidate"
            )
    n_total = sum(len(r) for r in sample.records.values()) * settings.samples_per_prompt * n_cands

    # The judge check's sample is known before any call (it needs only baseline answers), so checks run
    # interleaved with the pairs instead of in a second, slower phase after them.
    # a prompt the judge cannot see (image parts) fails as a pair, so it is no judge check either
    first_old = [p for p in old_pairs if p.candidate_name in (None, m.candidates[0][0].name)]
    planned = first_old + [
        Pair(
            pair_id=pair_id(r, k, settings.samples_per_prompt),
            prompt_type=r.prompt_type,
            prompt_id=cluster_of(sample, r),
            baseline=Side(model="", output=r.response if settings.baseline_source == "logged" else "x"),
        )
        for r, k in work
        if unjudgeable(r.messages) is None
    ]
    if settings.sequential:  # the judge check is drawn from the first look's prompts: a type may stop there
        first_look = {
            t: set(fixed_order([cluster_of(sample, r) for r in recs], settings.seed, t)[:MIN_PROMPTS])
            for t, recs in sample.records.items()
        }
        planned = [p for p in planned if (p.prompt_id or p.pair_id) in first_look.get(p.prompt_type, set())]
    check_plan = check_sample(planned, settings) if settings.judge_check else []
    to_check = {p.pair_id for p in check_plan}

    info.update(
        run_id=run.run_id,
        key=key,
        traffic=str(traffic),
        command="compare",
        # redact patterns often hold the very text they hide: run.json keeps the rule's hash (sample.redaction)
        settings=settings.model_dump(mode="json", exclude={"routes", "models", "base_dir", "redact"}),
        models={
            s.name: {
                "litellm_model": s.call_model,
                "api_base": client.redact(s.api_base) if s.api_base else None,  # a key in a URL: never
                "input_cost_per_mtok": s.input_per_token * 1e6,
                "output_cost_per_mtok": s.output_per_token * 1e6,
            }
            for s in (m.baseline, *(spec for _, spec in m.candidates), *m.judges.values())
        },
        candidates=[describe_candidate(c) for c, _ in m.candidates],
        template_hashes=tpl_hashes,
        type_judging={
            t: {
                "template": j.template.name,
                "reference_template": j.reference.name if j.reference is not None else None,
                "judges": settings.judges_for(t),
                "checks": [c.model_dump(mode="json", by_alias=True) for c in settings.checks_for(t)],
                "judge_check_kinds": list(kinds_for(settings, t)),
            }
            for t, j in judging.items()
        },
        versions=client.package_versions(),
        sample={
            "per_type": {t: len(r) for t, r in sample.records.items()},
            "volume": sample.volume,
            "skipped": dict(sample.skipped),
            "invalid_skipped": read_stats.invalid,
            "traffic_skipped": dict(read_stats.skipped),
            "redaction": redactor.summary() if redactor is not None else None,
        },
        monthly_volume=sample.monthly_volume(),
        judge_checks_planned=dict(Counter(p.prompt_type for p in check_plan)) if settings.judge_check else None,
    )
    if settings.sequential:  # the order is fixed, and recorded, before any verdict is seen
        info["sequential"] = {
            "order": {
                t: fixed_order([cluster_of(sample, r) for r in recs], settings.seed, t)
                for t, recs in sample.records.items()
            },
            "first_look": MIN_PROMPTS,
            "look": SEQUENTIAL_LOOK,
            # the weights' scale, fixed before any verdict: the type's largest cluster (records it stands for)
            "weight_scale": {t: max(sample.weight.get(r.id, 1) for r in recs) for t, recs in sample.records.items()},
        }
    local_models = current_local_models()
    if local_models is not None:
        info["local_models"] = local_models.describe()
    info.setdefault("started_at", utc_now())
    if resumed:
        info.setdefault("resumed_at", []).append(utc_now())
    run.write_run_info(info)

    cache = CallCache(run.file(CALLS), sibling_call_files(run.path))  # every run under --out shares its calls
    api_keys = {n: settings.api_key(n) for n in {m.baseline.name, *(s.name for _, s in m.candidates), *m.judges}}
    batch = None
    if settings.batch:
        from equiv.llm.batch import BatchQueue, batch_price_share

        batch = BatchQueue(
            run.path, api_keys, lambda spec: batch_price_share(spec, settings), on_event=emit, poll_s=BATCH_POLL_S
        )
    runner = Runner(
        cache=cache,
        concurrency=settings.concurrency,
        max_retries=settings.max_retries,
        max_spend_usd=settings.max_spend_usd,
        api_keys=api_keys,
        default_max_tokens=settings.max_tokens_default,
        on_event=emit,
        seed=settings.seed,
        redact=redactor.text if redactor is not None else None,
        redact_id=redactor.digest if redactor is not None else None,
        batch=batch,
    )
    if batch is not None:
        batch.store = runner.store_batch_answer
    if batch is not None:  # a killed run's submitted batches are polled again, never bought twice
        specs = {s.name: s for s in (m.baseline, *(spec for _, spec in m.candidates), *m.judges.values())}
        resumed_batches = runner.resume_batches(specs)
        from equiv.llm.batch import batchable

        info["batch"] = {
            "discount": settings.batch_discount,
            "resumed_batches": resumed_batches,
            "realtime_models": sorted(n for n, spec in specs.items() if not batchable(spec)),
        }
    judges = {name: make_judge(runner, spec, settings) for name, spec in m.judges.items()}
    panels = {t: Panel([judges[n] for n in settings.judges_for(t)]) for t in sample.records}
    w = _Work(settings, m, run, runner, panels, judging, emit, sample)
    checked_kinds: dict[str, set[str]] = {}
    for c in old_checks:
        checked_kinds.setdefault(c.pair_id, set()).add(c.kind)
    checked = {pid for pid, kinds in checked_kinds.items() if "truncate" in kinds}
    expected_checks = len(to_check - checked)  # on a resume, only the checks still to run
    emit(
        "estimate",
        {
            "usd": estimate(todo, m, settings, expected_checks, cache),
            "pairs": len(todo),
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
        for p in first_old:  # finished pairs whose checks did not all finish
            done_kinds = checked_kinds.get(p.pair_id, set())
            if p.pair_id in to_check and set(kinds_for(settings, p.prompt_type)) - done_kinds:
                intact = (p.baseline.output or "") if p.baseline else ""
                items.append((w.check(p, intact, done_kinds), "checks.jsonl", "check"))
        for rec, k, ci in todo:
            pid = pair_id(rec, k, settings.samples_per_prompt)
            if not settings.sequential:
                items.append((w.pair(rec, k, ci), "pairs.jsonl", "pair"))
            if ci == 0 and pid in to_check and pid not in checked:
                items.append((w.check_record(rec, k, checked_kinds.get(pid, set())), "checks.jsonl", "check"))
        n_checks_done = len(checked & to_check)
        emit(
            "phase",
            {
                "name": "pairs + judge checks" if to_check else "pairs",
                "total": n_total + len(to_check),
                "done": len(done) + n_checks_done,
            },
        )
        if settings.sequential:
            await _sequential_looks(
                w, settings, sample, todo, items, info["sequential"]["order"], info["sequential"]["weight_scale"]
            )
        else:
            await w.drain(items)
    except AbortedError as err:
        aborted = err.message
    except asyncio.CancelledError:  # Ctrl-C (asyncio.run cancels this task): stop buying, report what is done
        aborted = "interrupted (Ctrl-C); finished work is kept: run the same command again to resume"
    finally:
        # calls already sent when the run stopped are paid for: keep their answers (bounded wait)
        await runner.settle(min(10.0, settings.timeout_s))
        if batch is not None:
            info["batch"]["submitted"] = batch.submitted
            info["batch"]["adopted"] = batch.adopted
            info["batch"]["unknown"] = batch.unknown
            await batch.aclose()  # a batch still running stays recorded in batches.jsonl: the next run polls it
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
        judge=settings.judge_label,
        eval_cost_usd=round(cache.total_cost(), 6),
        monthly_volume=sample.monthly_volume(),
        aborted=aborted,
        planned_checks=info.get("judge_checks_planned"),
        labels=load_labels(run.path),
        candidates=info["candidates"],
        sequential_order=(info.get("sequential") or {}).get("order"),
        sequential_scale=(info.get("sequential") or {}).get("weight_scale"),
        eval_cost_realtime_usd=round(cache.total_realtime_cost(), 6),
    )
    verdict = result.verdict
    notes = run_notes(pairs, sample, read_stats, settings)
    realtime = (info.get("batch") or {}).get("realtime_models")
    if realtime:
        notes.append(
            f"--batch: {', '.join(realtime)} have no Batch API through litellm (or run on this machine): their "
            "calls were made in real time, at real-time prices"
        )
    for lost in (info.get("batch") or {}).get("unknown") or []:
        notes.append(
            f"--batch: an earlier session asked the provider for a batch (input file {lost['file_id']}) and was "
            f"stopped before it heard back; the provider's batch list could not be read ({lost['error']}), so its "
            f"{lost['requests']} requests were sent again and may be billed twice: look for that file in the "
            "provider's batches"
        )
    verdict.notes.extend(notes)
    info["run_notes"] = notes  # `equiv report` shows them again: they are not in pairs.jsonl
    info.update(
        finished_at=utc_now(),
        eval_cost_usd=round(cache.total_cost(), 6),
        eval_cost_realtime_usd=round(cache.total_realtime_cost(), 6),
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


BATCH_POLL_S = float(os.environ.get("EQUIV_BATCH_POLL_S", "10"))  # seconds between two polls of a batch
SEQUENTIAL_LOOK = 10  # prompts per candidate x type between two looks of the sequential test (after the first 30)


async def _sequential_looks(
    w: _Work,
    settings: Settings,
    sample: Sample,
    todo: list[tuple[TrafficRecord, int, int]],
    first_items: list[tuple[Any, str, str]],
    order: dict[str, list[str]],
    scale: dict[str, float],
) -> None:
    """--sequential: each candidate x type buys its prompts in their fixed order, a look at a time (the first
    30 prompts, then 10), and stops at the first look where its anytime-valid test has decided (the analysis
    replays the same test on the same order, so it stops at the same prompt). A look is bought concurrently."""
    from equiv.analyze import pair_results, sequential_decision

    rank = {t: {c: i for i, c in enumerate(cs)} for t, cs in order.items()}
    spp = settings.samples_per_prompt
    queues: dict[tuple[int, str], list[tuple[TrafficRecord, int, int]]] = {}
    for rec, k, ci in sorted(todo, key=lambda x: (rank[x[0].prompt_type].get(cluster_of(sample, x[0]), 0), x[1])):
        queues.setdefault((ci, rec.prompt_type), []).append((rec, k, ci))
    names = [c.name for c, _ in w.m.candidates]
    units = [(ci, t) for ci in range(len(names)) for t in sample.records]

    def unit_pairs(pairs: list[Pair], ci: int, t: str) -> list[Pair]:
        if w.named:
            return [p for p in pairs if p.prompt_type == t and p.candidate_name == names[ci]]
        return [p for p in pairs if p.prompt_type == t]

    active = set(units)
    look = 0
    while True:
        pairs = w.run.load_pairs()  # decide on what is in hand before buying more (a resumed run may be decided)
        for ci, t in sorted(active):
            mine = unit_pairs(pairs, ci, t)
            results, _ = pair_results(mine, settings.judge_calibration, settings.checks_for)
            if sequential_decision(mine, results, settings, t, len(units), order.get(t), scale.get(t)) is not None:
                active.discard((ci, t))
        batch = list(first_items) if look == 0 else []
        n = (MIN_PROMPTS if look == 0 else SEQUENTIAL_LOOK) * spp
        for u in sorted(active):
            queue = queues.get(u) or []
            take, queues[u] = queue[:n], queue[n:]
            batch += [(w.pair(rec, k, ci), "pairs.jsonl", "pair") for rec, k, ci in take]
        if not batch:
            return
        await w.drain(batch)
        look += 1


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
