"""`equiv calibrate`: the judge against human or gold labels (SPEC "Judges": Calibration against people).

Two uses:

* ``calibrate(labels_file, settings)`` judges labelled pairs (LABELS: ``pairs.jsonl`` lines with
  ``"gold": "baseline" | "candidate" | "tie"``) in both orders with one judge and writes a run directory
  ``<out>/<run_id>/`` with ``run.json``, the judged ``pairs.jsonl`` (gold kept) and ``calibration.json``.
  Identical answers (after strip) are not judged: they score 0, a tie. A pair where a judge call failed
  is recorded with its ``judge_failures``, left out of the figures and counted. The run directory is
  keyed like compare's (labels content, judge, template, --n, --seed ...): the same command again finds
  it and resumes, and its calls are cached (``calls.jsonl``), so nothing is bought twice.
* ``label_run(run_dir, labels_file)`` records people's labels of a run's pairs in
  ``RUN_DIR/human_labels.jsonl`` (merged: a re-label replaces the older one), with no model call, and
  re-renders the run's reports: the analysis then gives each type its ``human_agreement``.

Figures (``equiv.stats.agreement.human_agreement``): agreement, agreement without ties, Cohen's kappa,
position consistency, each with a cluster-bootstrap interval, overall and per prompt-type, next to the
trivial "longer answer wins" judge on the same pairs, so a reader sees whether the judge beats it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from equiv.config import Settings
from equiv.errors import AbortedError, InputError
from equiv.schema import HumanAgreement, Pair

if TYPE_CHECKING:
    from equiv.analyze import PairResult

Event = Callable[[str, dict[str, Any]], None]

CALIBRATION = "calibration.json"
GOLD = ("baseline", "candidate", "tie")
ORDERS = ("baseline_first", "candidate_first")
OVERALL_KEY = "calibration:all"  # the bootstrap stream of the overall figures (a type's is its name)
LENGTH_KEY = "calibration:longer-answer-wins"
SCHEMA_VERSION = 1


# ---------------------------------------------------------------------------------------------------------
# reading labels


def _line_error(path: Path, i: int, what: str) -> InputError:
    return InputError(f"{path}:{i}: {what}")


def _gold_of(row: Mapping[str, Any], path: Path, i: int) -> str:
    if "gold" not in row:
        raise _line_error(path, i, 'no "gold": each line needs "gold": "baseline", "candidate" or "tie"')
    gold = row["gold"]
    if gold not in GOLD:
        shown = json.dumps(gold, ensure_ascii=False)[:60]
        raise _line_error(path, i, f'"gold" must be "baseline", "candidate" or "tie" (got {shown})')
    return str(gold)


def _json_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-blank line; a line that is not a JSON object is exit 2 naming it."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: a directory; give a labels file (JSONL)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; labels are JSONL (one JSON object a line)") from None
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise _line_error(path, i, f"invalid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(row, dict):
            raise _line_error(path, i, "not a JSON object")
        out.append((i, row))
    return out


def read_labelled_pairs(path: str | Path) -> list[Pair]:
    """LABELS for `calibrate`: `pairs.jsonl` lines with `gold`, strictly checked (InputError names file:line).

    Each line must be a JSON object with a `pair_id`, a valid `gold`, and both answers
    (`baseline.output` and `candidate.output` as text). A pair_id given twice is refused.
    """
    p = Path(path)
    seen: dict[str, int] = {}
    pairs: list[Pair] = []
    for i, row in _json_lines(p):
        _gold_of(row, p, i)
        for side in ("baseline", "candidate"):
            s = row.get(side)
            if not isinstance(s, dict) or not isinstance(s.get("output"), str):
                raise _line_error(p, i, f'no {side} answer: "{side}" needs an "output" text')
        try:
            pair = Pair.model_validate(row)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(x) for x in first["loc"]) or "line"
            raise _line_error(p, i, f"{loc}: {first['msg']}") from None
        if pair.pair_id in seen:
            raise _line_error(p, i, f"pair_id {pair.pair_id!r} is also on line {seen[pair.pair_id]}")
        seen[pair.pair_id] = i
        pairs.append(pair)
    if not pairs:
        raise InputError(f"{p}: no labelled pairs in it")
    return pairs


def gold(pair: Pair) -> str:
    return str((pair.model_extra or {}).get("gold"))


def _rank(seed: int, prompt_type: str, pair_id: str) -> str:
    return hashlib.sha256(f"equiv-calibrate\0{seed}\0{prompt_type}\0{pair_id}".encode()).hexdigest()


def subset(pairs: Sequence[Pair], n: int | None, seed: int) -> list[Pair]:
    """`--n`: a seeded, reproducible subset of `n` pairs, stratified by prompt-type (proportional shares,
    at least a few of each type when `n` leaves room), in input order. Within a type the pairs with the
    smallest seeded hash are taken, so the same labels, n and seed always give the same pairs."""
    if n is None or n >= len(pairs):
        return list(pairs)
    if n < 1:
        raise InputError(f"--n must be at least 1 (got {n})")
    from equiv.label import allocate

    by_type: dict[str, list[Pair]] = {}
    for p in pairs:
        by_type.setdefault(p.prompt_type, []).append(p)
    alloc = allocate({t: len(v) for t, v in by_type.items()}, n)
    chosen: set[str] = set()
    for t, members in by_type.items():
        ranked = sorted(members, key=lambda p: (_rank(seed, t, p.pair_id), p.pair_id))
        chosen.update(p.pair_id for p in ranked[: alloc[t]])
    return [p for p in pairs if p.pair_id in chosen]


# ---------------------------------------------------------------------------------------------------------
# figures


def _length_score(pair: Pair) -> float:
    """The trivial judge: the longer answer (after strip) wins, equal lengths tie (candidate's view)."""
    b = len(((pair.baseline.output or "") if pair.baseline else "").strip())
    c = len(((pair.candidate.output or "") if pair.candidate else "").strip())
    return 1.0 if c > b else -1.0 if c < b else 0.0


def _dump(h: HumanAgreement) -> dict[str, Any]:
    return h.model_dump(mode="json")


def _confusion(items: Sequence[Any]) -> dict[str, dict[str, int]]:
    """judge side -> gold side -> pairs."""
    from equiv.stats.agreement import BASELINE, CANDIDATE, judge_category

    names = {BASELINE: "baseline", CANDIDATE: "candidate"}
    out = {j: dict.fromkeys(GOLD, 0) for j in GOLD}
    for it in items:
        out[names.get(judge_category(it.score), "tie")][it.gold] += 1
    return out


def figures(
    pairs: Sequence[Pair],
    labels: Mapping[str, str],
    settings: Settings,
    judge: str,
    results: Sequence[PairResult] | None = None,
) -> dict[str, Any]:
    """calibration.json's figures for labelled pairs that carry the judge's verdicts (or were decided
    without it): overall and per prompt-type, with the longer-answer-wins baseline on the same pairs.

    A pair with no usable score (an error, a judge failure, no verdict) is left out and counted in
    `n_failed`; a pair without a label is not counted at all. `results`: the analysis's own reading of
    the pairs (a run's, so its figures match verdict.json's); by default each pair's verdicts as written.
    """
    from equiv.analyze import pair_results
    from equiv.stats.agreement import Labelled, human_agreement

    if results is None or len(results) != len(pairs):
        results, _ = pair_results(pairs)
    judged: dict[str, list[Labelled]] = {}
    length: dict[str, list[Labelled]] = {}
    failed: Counter[str] = Counter()
    identical: Counter[str] = Counter()
    golds: dict[str, Counter[str]] = {}
    for p, r in zip(pairs, results, strict=True):
        g = labels.get(p.pair_id)
        if g not in GOLD:
            continue
        golds.setdefault(p.prompt_type, Counter())[g] += 1
        if r.score is None:
            failed[p.prompt_type] += 1
            continue
        identical[p.prompt_type] += r.decided_by is not None
        judged.setdefault(p.prompt_type, []).append(
            Labelled(cluster=r.cluster, score=r.score, gold=g, consistent=r.consistent)  # type: ignore[arg-type]
        )
        length.setdefault(p.prompt_type, []).append(
            Labelled(cluster=r.cluster, score=_length_score(p), gold=g)  # type: ignore[arg-type]
        )

    def block(items: list[Labelled], lengths: list[Labelled], key: str) -> dict[str, Any]:
        s, b, a = settings.seed, settings.bootstrap, settings.alpha
        h = human_agreement(items, seed=s, key=key, n_boot=b, alpha=a)
        base = human_agreement(lengths, seed=s, key=f"{LENGTH_KEY}:{key}", n_boot=b, alpha=a)
        return {
            **_dump(h),
            "confusion": _confusion(items),
            "baselines": {
                "longer_answer_wins": {
                    k: v
                    for k, v in _dump(base).items()
                    if k in ("n_without_ties", "agreement", "agreement_without_ties", "kappa")
                }
            },
        }

    types = sorted(golds)
    per_type = []
    for t in types:
        per_type.append(
            {
                "prompt_type": t,
                **block(judged.get(t, []), length.get(t, []), t),
                "n_failed": failed[t],
                "n_identical": identical[t],
                "gold": {g: golds[t][g] for g in GOLD},
            }
        )
    all_items = [it for t in types for it in judged.get(t, [])]
    all_length = [it for t in types for it in length.get(t, [])]
    total_gold: Counter[str] = sum(golds.values(), Counter())
    return {
        "schema_version": SCHEMA_VERSION,
        "judge": judge,
        **block(all_items, all_length, OVERALL_KEY),
        "n_failed": sum(failed.values()),
        "n_identical": sum(identical.values()),
        "gold": {g: total_gold[g] for g in GOLD},
        "alpha": settings.alpha,
        "bootstrap": settings.bootstrap,
        "seed": settings.seed,
        "interval": f"two-sided {1 - 2 * settings.alpha:.0%} percentile interval, bootstrap over prompts",
        "prompt_types": per_type,
    }


# ---------------------------------------------------------------------------------------------------------
# mode 1: judge labelled pairs


@dataclass
class CalibrationResult:
    run_dir: Path
    calibration: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    aborted: str | None = None


def run_key(settings: Settings, judge: str, labels_digest: str, template_digest: str, n: int | None) -> str:
    """What defines a calibration run: the same command -> the same key -> the run directory is resumed."""
    blob = json.dumps(
        {
            "command": "calibrate",
            "labels": labels_digest,
            "judge": judge,
            "model": settings.model_settings(judge).model_dump(),
            "template": template_digest,
            "n": n,
            "seed": settings.seed,
            "max_tokens_default": settings.max_tokens_default,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _judge_name(settings: Settings) -> str:
    if not isinstance(settings.judge, str):
        raise InputError(
            f"calibrate measures one judge at a time; the config names a panel ({', '.join(settings.judge)}): "
            "give --judge MODEL"
        )
    return settings.judge


def _reference(pair: Pair) -> str | None:
    ref = (pair.model_extra or {}).get("reference")
    return ref if isinstance(ref, str) and ref.strip() else None


def _fresh(pair: Pair) -> Pair:
    """The input line as it goes to the judge: its own verdicts, failures and error replaced by this run's."""
    out = pair.model_copy(deep=True)
    out.judgments, out.judge_failures, out.error = [], [], None
    if out.model_extra is not None:
        out.model_extra.pop("decided_by", None)
    return out


def _quiet(kind: str, data: dict[str, Any]) -> None:
    return None


def calibrate(
    labels_file: str | Path,
    settings: Settings,
    *,
    out: str | Path = "reports",
    n: int | None = None,
    on_event: Event | None = None,
) -> CalibrationResult:
    """Judge the labelled pairs of `labels_file` and write `<out>/<run_id>/` (see the module's docstring).

    Raises InputError (exit 2) before any call for bad labels, an unknown price, a missing key or template;
    a run stopped by the spend cap or an authentication failure returns with `aborted` set (exit 4).
    """
    from equiv.judging.prompt import EXTRA_VARIABLES, find_template, template_hash, template_variables
    from equiv.llm import client
    from equiv.local.server import serving
    from equiv.store import find_run, new_run_id
    from equiv.traffic import file_digest

    emit = on_event or _quiet
    path = Path(labels_file)
    pairs = subset(read_labelled_pairs(path), n, settings.seed)
    judge = _judge_name(settings)
    spec = client.resolve_model(judge, settings)  # an unknown price: exit 2 before anything else
    settings.api_key(judge)
    client.check_credentials([spec], settings)
    tpl_path = find_template(settings.judge_template, settings.base_dir)
    tpl_text = tpl_path.read_text(encoding="utf-8")
    unknown = template_variables(tpl_text) - {"conversation", "answer_a", "answer_b", *EXTRA_VARIABLES}
    if unknown:
        raise InputError(f"judge template {tpl_path}: unknown variable(s) {', '.join(sorted(unknown))}")
    tpl_hash = template_hash(tpl_path)
    digest = file_digest(path)
    key = run_key(settings, judge, digest, tpl_hash, n)
    parent = Path(out)
    run_path = find_run(parent, key)
    if run_path is None:
        run_path = parent / new_run_id(key)
        later = 0
        while run_path.exists():
            later += 1
            run_path = parent / new_run_id(key, later_s=later)
    with serving(settings, [judge]):
        return asyncio.run(
            _run(
                run_path,
                pairs,
                settings,
                spec,
                tpl_text,
                {tpl_path.name: tpl_hash},
                key,
                {"labels": str(path), "labels_digest": digest, "n": n},
                emit,
            )
        )


async def _run(
    run_path: Path,
    labelled: list[Pair],
    settings: Settings,
    spec: Any,
    tpl_text: str,
    tpl_hashes: dict[str, str],
    key: str,
    source: dict[str, Any],
    emit: Event,
) -> CalibrationResult:
    from equiv.instruments import Answer, identical
    from equiv.judging.pairwise import make_judge
    from equiv.judging.prompt import render, unjudgeable
    from equiv.llm import client
    from equiv.llm.cache import CallCache, call_key, sibling_call_files
    from equiv.llm.runner import Runner
    from equiv.store import CALLS, PAIRS, RunDir, utc_now, write_json_atomic

    run = RunDir(run_path)
    run.lock()
    try:
        info = run.read_own_run_info(key, "use another --out")
        resumed = bool(info)
        wanted = {p.pair_id for p in labelled}
        # finished pairs are kept; failed ones are judged again (their finished calls are cached)
        old = [p for p in run.load_pairs() if p.pair_id in wanted and p.error is None and not p.judge_failures]
        old_ids = {p.pair_id for p in old}
        run.rewrite(PAIRS, old)
        todo = [_fresh(p) for p in labelled if p.pair_id not in old_ids]

        info.update(
            run_id=run.run_id,
            key=key,
            command="calibrate",
            **source,
            judge=spec.name,
            models={
                spec.name: {
                    "litellm_model": spec.call_model,
                    "api_base": client.redact(spec.api_base) if spec.api_base else None,
                    "input_cost_per_mtok": spec.input_per_token * 1e6,
                    "output_cost_per_mtok": spec.output_per_token * 1e6,
                }
            },
            template_hashes=tpl_hashes,
            settings={
                k: getattr(settings, k)
                for k in (
                    "seed",
                    "alpha",
                    "bootstrap",
                    "concurrency",
                    "max_spend_usd",
                    "max_tokens_default",
                    "judge_retries",
                    "max_retries",
                    "judge_template",
                )
            },
            versions=client.package_versions(),
        )
        info.setdefault("started_at", utc_now())
        if resumed:
            info.setdefault("resumed_at", []).append(utc_now())
        run.write_run_info(info)

        cache = CallCache(run.file(CALLS), sibling_call_files(run.path))
        runner = Runner(
            cache=cache,
            concurrency=settings.concurrency,
            max_retries=settings.max_retries,
            max_spend_usd=settings.max_spend_usd,
            api_keys={spec.name: settings.api_key(spec.name)},
            default_max_tokens=settings.max_tokens_default,
            on_event=emit,
            seed=settings.seed,
        )
        judge = make_judge(runner, spec, settings, tpl_text)

        def same(p: Pair) -> bool:
            assert p.baseline is not None and p.candidate is not None  # read_labelled_pairs checked both
            return identical(Answer(p.baseline.output or ""), Answer(p.candidate.output or ""))

        def extra(p: Pair) -> dict[str, str] | None:
            ref = _reference(p)
            return {"reference": ref} if ref is not None else None

        to_call = [p for p in todo if not same(p) and unjudgeable(p.messages) is None]
        usd = 0.0
        sent = client.with_output_limit(dict(judge.params), settings.max_tokens_default)
        for p in to_call:
            b, c = (p.baseline.output or "") if p.baseline else "", (p.candidate.output or "") if p.candidate else ""
            for a_text, b_text in ((b, c), (c, b)):
                prompt = render(tpl_text, p.messages, a_text, b_text, **(extra(p) or {}))
                if judge.prefill:
                    prompt = [*prompt, {"role": "assistant", "content": judge.prefill}]
                if cache.get(call_key(spec.call_model, spec.api_base, prompt, sent, 0)) is not None:
                    continue
                tokens = sum(len(m["content"]) for m in prompt) // 4 + 8
                usd += spec.cost(tokens, 60)
        emit(
            "estimate",
            {
                "usd": usd,
                "pairs": len(todo),
                "calls": 2 * len(to_call),
                "identical": len(todo) - len(to_call),
                "done": len(old),
                "total": len(labelled),
                "spent_before": runner.spent,
                "cap": settings.max_spend_usd,
                "run_dir": str(run.path),
                "resumed": resumed,
            },
        )

        async def one(p: Pair) -> Pair:
            blind = unjudgeable(p.messages)
            if blind is not None:
                p.error = blind
                return p
            if same(p):
                p.decided_by = "identical"  # type: ignore[attr-defined]  # an extra field: scored 0, never judged
                return p
            assert p.baseline is not None and p.candidate is not None
            judgments, failures = await judge.both_orders(
                p.messages, p.baseline.output or "", p.candidate.output or "", ORDERS, None, extra(p)
            )
            p.judgments, p.judge_failures = judgments, failures
            if failures:  # a pair judged in one order only is left out of the figures, and counted
                reasons = "; ".join(sorted({f.error for f in failures}))
                p.error = (
                    "judge failed in both orders: " if not judgments else "judge failed in one order: "
                ) + reasons
            return p

        aborted: str | None = None
        emit("phase", {"name": "labelled pairs", "total": len(labelled), "done": len(old)})
        gate = asyncio.Semaphore(settings.concurrency)

        async def gated(p: Pair) -> Pair:
            async with gate:
                return await one(p)

        tasks = [asyncio.ensure_future(gated(p)) for p in todo]
        saved: set[str] = set()
        try:
            for fut in asyncio.as_completed(tasks):
                done = await fut
                run.append(PAIRS, done)
                saved.add(done.pair_id)
                emit("pair", {"prompt_type": done.prompt_type, "error": done.error})
        except AbortedError as err:
            aborted = err.message  # the runner has said why (its "aborted" event)
        except asyncio.CancelledError:
            aborted = "interrupted (Ctrl-C); finished work is kept: run the same command again to resume"
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for t in tasks:  # pairs that finished as the run stopped: kept too
                if t.done() and not t.cancelled() and t.exception() is None and t.result().pair_id not in saved:
                    run.append(PAIRS, t.result())
            await runner.settle(min(10.0, settings.timeout_s))
            cache.close()

        judged = {p.pair_id: p for p in run.load_pairs()}
        ordered = [judged[p.pair_id] for p in labelled if p.pair_id in judged]
        run.rewrite(PAIRS, ordered)  # input order, whatever order the calls finished in
        labels = {p.pair_id: gold(p) for p in labelled}
        calib = figures(ordered, labels, settings, spec.name)
        eval_cost = round(cache.total_cost(), 6)
        calib = {"run_id": run.run_id, **calib, "eval_cost_usd": eval_cost}
        if aborted:
            calib["aborted"] = aborted
            calib["n_not_judged"] = len(labelled) - len(ordered)
        write_json_atomic(run.file(CALIBRATION), calib)
        info.update(
            finished_at=utc_now(),
            eval_cost_usd=eval_cost,
            aborted=aborted,
            counts={
                "labelled": len(labelled),
                "in_figures": calib["n"],
                "identical": calib["n_identical"],
                "judge_failures": calib["n_failed"],
                "not_judged": len(labelled) - len(ordered),
            },
            calls={
                "bought_this_session": runner.stats.calls,
                "cache_hits": runner.stats.cache_hits,
                "retries": runner.stats.retries,
                "errors": dict(runner.stats.errors),
            },
        )
        run.write_run_info(info)
        return CalibrationResult(run_dir=run.path, calibration=calib, info=info, aborted=aborted)
    finally:
        run.unlock()


# ---------------------------------------------------------------------------------------------------------
# mode 2: people's labels of a run


@dataclass
class LabelledRun:
    run_dir: Path
    n_given: int  # labels read from the file (after de-duplication: the last label of a pair wins)
    n_matched: int  # of those, pairs of this run
    n_skipped: int  # pair_ids not in the run
    n_total: int  # labels in human_labels.jsonl after the merge
    calibration: dict[str, Any]
    verdict: Any  # the re-rendered Verdict
    skipped_ids: list[str] = field(default_factory=list)


def read_run_labels(path: str | Path) -> dict[str, str]:
    """pair_id -> gold from `equiv label`'s labels.jsonl (other fields ignored); the last line of a pair wins."""
    p = Path(path)
    out: dict[str, str] = {}
    for i, row in _json_lines(p):
        pid = row.get("pair_id")
        if not isinstance(pid, str) or not pid:
            raise _line_error(p, i, 'no "pair_id": each line names the pair it labels')
        out.pop(pid, None)
        out[pid] = _gold_of(row, p, i)
    if not out:
        raise InputError(f"{p}: no labels in it")
    return out


def _existing_labels(path: Path) -> dict[str, str]:
    from equiv.labels import load_labels

    return dict(load_labels(path.parent) or {}) if path.is_file() else {}


def label_run(run_dir: str | Path, labels_file: str | Path) -> LabelledRun:
    """Record people's labels of a run's pairs in RUN_DIR/human_labels.jsonl and re-render its reports.

    No model call. Labels of pairs not in the run are skipped and counted (InputError if none matches).
    Writes RUN_DIR/calibration.json (the same figures as `calibrate` on a labels file, from the run's own
    verdicts) and rebuilds verdict.json, summary.md and report.html from pairs.jsonl, as `equiv report`
    does in a run's own directory.
    """
    from equiv.api import reanalyze
    from equiv.labels import HUMAN_LABELS
    from equiv.pipeline import write_reports
    from equiv.store import PAIRS, RunDir, write_json_atomic, write_text_atomic

    folder = Path(run_dir)
    run = RunDir(folder)
    if not folder.is_dir() or not run.file(PAIRS).is_file():
        raise InputError(f"{folder}: not a run directory (no {PAIRS} in it)")
    given = read_run_labels(labels_file)
    pairs = run.load_pairs()
    types = {p.pair_id: p.prompt_type for p in pairs}
    matched = {pid: g for pid, g in given.items() if pid in types}
    skipped = [pid for pid in given if pid not in types]
    if not matched:
        shown = ", ".join(skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        raise InputError(f"{labels_file}: none of its {len(given)} pair_id(s) is in {folder} ({shown})")
    run.lock()
    try:
        target = run.file(HUMAN_LABELS)
        merged = _existing_labels(target)
        merged.update(matched)  # a re-label replaces the older one, in its place
        write_text_atomic(
            target,
            "".join(
                json.dumps({"pair_id": pid, "prompt_type": types.get(pid), "gold": g}, ensure_ascii=False) + "\n"
                for pid, g in merged.items()
            ),
        )
        again = reanalyze(folder)  # the run's own analysis settings (run.json), and now its labels
        info = dict(again.info)
        judge = again.verdict.judge or str(info.get("judge") or "")
        labels = {pid: g for pid, g in merged.items() if pid in types}
        calib = {
            "run_id": again.verdict.run_id,
            **figures(again.pairs, labels, again.settings, judge, again.analysis.pairs),
        }
        calib["source"] = {"labels": HUMAN_LABELS, "judged_by": "the run's own verdicts"}
        write_json_atomic(run.file(CALIBRATION), calib)
        write_reports(folder, again.analysis, again.pairs, again.checks, info, again.history)
    finally:
        run.unlock()
    return LabelledRun(
        run_dir=folder,
        n_given=len(given),
        n_matched=len(matched),
        n_skipped=len(skipped),
        n_total=len(merged),
        calibration=calib,
        verdict=again.verdict,
        skipped_ids=skipped,
    )
