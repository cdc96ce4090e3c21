"""`equiv optimize`: search a candidate's system prompt on a train split, select it on a validation split, and
qualify it on a disjoint held-out split only (SPEC "Candidates").

Data flow: sample the type's traffic (as `compare` does) -> split by prompt cluster with a stable hash
(train / val / held-out never share a prompt) -> GEPA (the `gepa` package, optional extra `[optimize]`)
evolves the system prompt; its adapter scores a prompt on a batch with equiv's own runner (litellm, cache,
spend cap) and judge: the candidate's answer against the baseline's in both orders, length-controlled (a
win by a longer answer counts as a tie, so verbosity cannot win the search) -> the reflection model sees
the current prompt with judged train examples only and proposes the next one (its reply's last fenced
block) -> GEPA keeps the best prompt on the validation split -> a normal `compare` run on the held-out
split decides GO / NO_GO / INCONCLUSIVE -> prompts/<type>.json with provenance.

Resume: every call goes through the run's call cache and GEPA is seeded, so the same command replays a
killed search at no cost and carries on; `--budget-usd` caps search plus qualification.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import re
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from equiv.analyze import pair_score
from equiv.candidates import prompt_hash
from equiv.config import CandidateConfig, Settings
from equiv.errors import AbortedError, InputError
from equiv.llm.together import together
from equiv.schema import Pair, TrafficRecord

T = TypeVar("T")
SPLITS = ("train", "val", "heldout")
FRACTIONS = (0.3, 0.2)  # train, val; the rest (half) is held out
LONGER = 1.2  # a candidate answer this much longer than the baseline's cannot win the search
REFLECT_TEMPLATE = """You improve the system prompt of an assistant model. Below is its current system prompt and
examples of its answers on real requests, each compared by a judge with a reference answer from a
stronger model (score: 1 the assistant's answer was preferred, 0.5 a tie, 0 the reference was preferred).

<current_prompt>
{prompt}
</current_prompt>

{examples}

Write an improved system prompt that makes the assistant's answers as good as the reference answers on
requests like these. Do not copy the requests or answers into the prompt: it must work on new requests.
Longer answers are not better answers. Reply with the new system prompt alone, in one fenced block (```).
"""


def cluster_split(cluster: str, prompt_type: str, seed: int) -> str:
    """A prompt cluster's split, from a stable hash (independent of order, sample size and other types)."""
    h = hashlib.sha256(f"equiv-optimize-v1|{seed}|{prompt_type}|{cluster}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    return "train" if u < FRACTIONS[0] else "val" if u < FRACTIONS[0] + FRACTIONS[1] else "heldout"


def proposal_from(reply: str) -> str:
    """The reflection model's proposal: its reply's last fenced block (```), else the whole reply. A small
    model often wraps it as JSON ({"system_prompt": "..."}): a JSON object with one text value is unwrapped."""
    blocks = re.findall(r"```[^\n`]*\n(.*?)```", reply, flags=re.S)
    text = (blocks[-1] if blocks else reply).strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if isinstance(data, dict):
            values = [v for v in data.values() if isinstance(v, str)]
            picked = data.get("system_prompt") or data.get("prompt") or (values[0] if len(values) == 1 else None)
            if isinstance(picked, str) and picked.strip():
                return picked.strip()
    return text


def ids_hash(records: list[TrafficRecord]) -> str:
    return hashlib.sha256("\n".join(sorted(r.id for r in records)).encode()).hexdigest()


class _Loop:
    """An event loop in a thread: GEPA calls the adapter synchronously, the runner is async."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="equiv-optimize", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        async def cancel_rest() -> None:  # litellm's logging worker and the like: stopped, as asyncio.run does
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Scored:
    record_id: str
    score: float  # GEPA's: (pair score + 1) / 2 in [0, 1], after length control
    pair_score: float | None
    feedback: str
    candidate_answer: str
    baseline_answer: str


@dataclass
class _Search:
    """The objective and the proposer, on equiv's runner and judge."""

    settings: Settings
    prompt_type: str
    base: CandidateConfig
    models: Any  # equiv.models.Models
    runner: Any  # equiv.llm.runner.Runner
    panel: Any  # equiv.judging.pairwise.Panel
    template: str
    reflect_spec: Any
    loop: _Loop
    by_id: dict[str, TrafficRecord]
    log: list[dict[str, Any]] = field(default_factory=list)  # every evaluation: prompt hash, ids, scores
    prompts: dict[str, str] = field(default_factory=dict)  # every prompt evaluated, by its hash

    def config(self, prompt: str) -> CandidateConfig:
        return self.base.model_copy(update={"system_prompt": prompt or None, "system_prompt_file": None})

    async def score_one(self, rec: TrafficRecord, prompt: str) -> Scored:
        from equiv.generate import generate
        from equiv.llm.client import CallError

        cand = self.config(prompt)
        try:
            base, side = await generate(
                rec, 0, self.settings, self.models.baseline, self.models.candidate, self.runner, cand
            )
        except CallError as err:
            return Scored(rec.id, 0.0, None, f"the assistant's call failed: {err.message}", "", rec.response or "")
        a, b = base.output or "", side.output or ""
        judgments, _failures = await self.panel.both_orders(
            rec.messages,
            a,
            b,
            ("baseline_first", "candidate_first"),
            self.template,
            {"labels": "", "reference": rec.reference or "", "rubric": ""},
        )
        s = pair_score(Pair(pair_id=rec.id, judgments=judgments)) if judgments else None
        if s is None:
            return Scored(rec.id, 0.5, None, "the judge's verdict could not be read", b, a)
        why = "; ".join(j.reason for j in judgments if j.reason)[:400]
        if s > 0 and len(b) > LONGER * max(1, len(a)):
            s_used, note = 0.0, " (its answer is much longer than the reference: a win by length counts as a tie)"
        else:
            s_used, note = s, ""
        verdict = "preferred" if s_used > 0 else "tied" if s_used == 0 else "worse than the reference"
        return Scored(
            rec.id, (s_used + 1) / 2, s, f"the judge found the assistant's answer {verdict}{note}: {why}", b, a
        )

    async def score_batch(self, batch: list[TrafficRecord], prompt: str) -> list[Scored]:
        return await together(*(self.score_one(r, prompt) for r in batch))

    async def reflect(self, prompt: str, examples: list[dict[str, Any]]) -> str:
        shown = "\n\n".join(
            f"<example>\nrequest: {ex['request']}\nassistant's answer: {ex['answer']}\nreference answer: "
            f"{ex['reference']}\nscore: {ex['score']}\njudge: {ex['feedback']}\n</example>"
            for ex in examples
        )
        text = REFLECT_TEMPLATE.format(prompt=prompt or "(empty: the assistant has no system prompt)", examples=shown)
        comp = await self.runner.call(
            self.reflect_spec, [{"role": "user", "content": text}], {"temperature": 0, "max_tokens": 1500}
        )
        return proposal_from(comp.output) or prompt


def _request_text(rec: TrafficRecord, limit: int = 1500) -> str:
    """The request as the reflection model reads it: the conversation after the system prompt, as judges see it."""
    from equiv.judging.prompt import render_conversation

    text = render_conversation([m for m in rec.messages if m.get("role") not in ("system", "developer")])
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Adapter:
    """GEPA's adapter (gepa.core.adapter.GEPAAdapter): one component, "system_prompt"."""

    def __init__(self, search: _Search) -> None:
        self.search = search

    def evaluate(self, batch: list[TrafficRecord], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        from gepa.core.adapter import EvaluationBatch

        prompt = candidate["system_prompt"]
        self.search.prompts[prompt_hash(prompt) or ""] = prompt
        scored = self.search.loop.run(self.search.score_batch(batch, prompt))
        self.search.log.append(
            {"prompt_sha256": prompt_hash(prompt), "ids": [r.id for r in batch], "scores": [x.score for x in scored]}
        )
        traces = [
            {
                "request": _request_text(self.search.by_id[x.record_id]),
                "answer": x.candidate_answer[:1500],
                "reference": x.baseline_answer[:1500],
                "score": round(x.score, 3),
                "feedback": x.feedback,
            }
            for x in scored
        ]
        return EvaluationBatch(
            outputs=[x.candidate_answer for x in scored],
            scores=[x.score for x in scored],
            trajectories=traces if capture_traces else None,
        )

    def make_reflective_dataset(
        self, candidate: dict[str, str], eval_batch: Any, components_to_update: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        return {name: list(eval_batch.trajectories or []) for name in components_to_update}

    def propose_new_texts(
        self, candidate: dict[str, str], reflective_dataset: Any, components_to_update: list[str]
    ) -> dict[str, str]:
        out = dict(candidate)
        for name in components_to_update:
            out[name] = self.search.loop.run(self.search.reflect(candidate[name], list(reflective_dataset[name])))
        return out


@dataclass
class Outcome:
    prompt_type: str
    prompt_file: Path
    run_dir: Path
    verdict: str
    data: dict[str, Any]


def seed_prompt(records: list[TrafficRecord], base: CandidateConfig) -> str:
    """Where the search starts: the candidate's own system prompt, else the traffic's most common one."""
    if base.system_prompt is not None:
        return base.system_prompt
    from collections import Counter

    from equiv.judging.prompt import message_text

    counts = Counter(
        message_text(r.messages[0])
        for r in records
        if r.messages and r.messages[0].get("role") in ("system", "developer")
    )
    return counts.most_common(1)[0][0] if counts else ""


def _stopper(runner: Any, cap: float) -> Any:
    """GEPA stops before the search's share of the budget would run out (the runner's cap is the hard one)."""

    class SpendStopper:
        def __init__(self) -> None:
            self.last = runner.spent
            self.step = 0.0

        def __call__(self, gepa_state: Any) -> bool:
            self.step = max(self.step, runner.spent - self.last)
            self.last = runner.spent
            return bool(runner.spent + self.step >= cap)

    return SpendStopper()


class _QuietLogger:
    def __init__(self, emit: Any) -> None:
        self.emit = emit

    def log(self, message: str) -> None:
        self.emit("optimize_log", {"message": message})


def _quiet(kind: str, data: dict[str, Any]) -> None:
    return None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "default"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _split_means(log: list[dict[str, Any]], prompt: str, ids: set[str]) -> float | None:
    """A prompt's mean search score over the records of one split it was evaluated on (each record once:
    its last evaluation)."""
    digest = prompt_hash(prompt)
    last: dict[str, float] = {}
    for entry in log:
        if entry["prompt_sha256"] == digest:
            for i, s in zip(entry["ids"], entry["scores"], strict=True):
                if i in ids:
                    last[i] = s
    return _mean(list(last.values()))


def _heldout_file(path: Path, records: list[TrafficRecord], weights: dict[str, int]) -> Path:
    """The held-out split as native traffic, each prompt as often as the sampled traffic holds it (so the
    qualification is traffic-weighted like any run)."""
    from equiv.store import write_text_atomic

    lines = []
    for r in records:
        row = r.model_dump(mode="json", exclude_none=True)
        lines.append(json.dumps(row, ensure_ascii=False))
        for i in range(1, max(1, int(weights.get(r.id, 1)))):
            lines.append(json.dumps({**row, "id": f"{r.id}~{i}"}, ensure_ascii=False))
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def optimize(
    traffic: Any,
    settings: Settings,
    *,
    prompt_type: str,
    budget_usd: float,
    reflection_model: str | None = None,
    out: str | Path = "reports",
    prompts_dir: str | Path = "prompts",
    max_metric_calls: int | None = None,
    on_event: Any = None,
) -> Outcome:
    """Search, select and qualify one prompt-type's system prompt for the (single) candidate; see the module.
    local/ models (the search's and the qualification's) are served for the whole of it."""
    from equiv.local.server import serving

    reflect = reflection_model or settings.judges_for(prompt_type)[0]
    names: list[str | None] = [settings.baseline, *settings.candidate_models, *settings.all_judges(), reflect]
    with serving(settings, names):
        return _optimize(
            traffic,
            settings,
            prompt_type=prompt_type,
            budget_usd=budget_usd,
            reflection_model=reflect,
            out=out,
            prompts_dir=prompts_dir,
            max_metric_calls=max_metric_calls,
            on_event=on_event,
        )


def _optimize(
    traffic: Any,
    settings: Settings,
    *,
    prompt_type: str,
    budget_usd: float,
    reflection_model: str | None = None,
    out: str | Path = "reports",
    prompts_dir: str | Path = "prompts",
    max_metric_calls: int | None = None,
    on_event: Any = None,
) -> Outcome:
    """Search, select and qualify one prompt-type's system prompt for the (single) candidate; see the module."""
    from equiv.estimate import estimate
    from equiv.judging.pairwise import Panel, make_judge
    from equiv.judging.select import select as select_templates
    from equiv.llm import client
    from equiv.llm.cache import CallCache
    from equiv.llm.runner import Runner
    from equiv.models import resolve_models
    from equiv.notes import model_family
    from equiv.pipeline import acompare
    from equiv.sampling import stratified_sample
    from equiv.store import utc_now, write_json_atomic
    from equiv.traffic import ReadStats, file_digest, read_traffic
    from equiv.traffic.redact import load_redactor

    emit = on_event or _quiet
    try:
        import gepa
    except ImportError:
        raise InputError("equiv optimize needs the gepa package: pip install 'equiv[optimize]'") from None
    if budget_usd <= 0:
        raise InputError("--budget-usd must be above 0: it is the hard cap on what the search and qualification spend")
    cands = settings.candidate_configs()
    if len(cands) != 1:
        raise InputError("equiv optimize searches one candidate's prompt: name one --candidate")
    base = cands[0]
    models = resolve_models(settings)
    reflect_name = reflection_model or settings.judges_for(prompt_type)[0]
    reflect_spec = client.resolve_model(reflect_name, settings)
    client.check_credentials([reflect_spec], settings)
    cautions = []
    judge_families = {model_family(j) for j in settings.judges_for(prompt_type)}
    if model_family(reflect_name) in judge_families:
        cautions.append(
            f"the reflection model {reflect_name} is from the judge's family ({model_family(reflect_name)}): the "
            "search may learn what that family's judge likes rather than what is better; use --reflection-model "
            "from another family"
        )

    redactor = load_redactor(settings.redact)
    stats = ReadStats()
    records_iter = read_traffic(
        traffic,
        prompt_type_field=settings.prompt_type_field,
        skip_invalid=settings.skip_invalid,
        stats=stats,
        format=settings.format,
        where=settings.where,
        redact=redactor,
    )
    sample = stratified_sample(
        records_iter,
        per_type=settings.for_type(prompt_type).per_type,
        seed=settings.seed,
        types=[prompt_type],
        require_response=settings.baseline_source == "logged",
    )
    records = sample.records.get(prompt_type) or []
    if sample.missing_types or not records:
        raise InputError(
            f"--types {prompt_type}: no usable records of that prompt-type "
            f"(found: {', '.join(sorted(sample.volume)) or 'none'})"
        )
    splits: dict[str, list[TrafficRecord]] = {s: [] for s in SPLITS}
    for r in records:
        splits[cluster_split(sample.cluster.get(r.id) or r.id, prompt_type, settings.seed)].append(r)
    if len(splits["train"]) < 3 or len(splits["val"]) < 2:
        raise InputError(
            f"{prompt_type}: {len(records)} distinct prompts split into {len(splits['train'])} train / "
            f"{len(splits['val'])} validation / {len(splits['heldout'])} held-out: too few to search; raise --per-type "
            "or add traffic"
        )
    assert not {r.id for r in splits["heldout"]} & {r.id for s in ("train", "val") for r in splits[s]}

    digest = file_digest(traffic, where=settings.where, prompt_type_field=settings.prompt_type_field)
    key = hashlib.sha256(
        json.dumps(
            [
                digest,
                prompt_type,
                settings.baseline,
                base.model_dump(mode="json"),
                settings.judges_for(prompt_type),
                reflect_name,
                settings.seed,
                settings.per_type,
                settings.baseline_source,
                settings.judge_template,
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:10]
    out = Path(out)
    work = out / f"optimize-{_safe(prompt_type)}-{key}"
    work.mkdir(parents=True, exist_ok=True)

    # the qualification's share of the budget is set aside first: a search may never leave it unpaid
    base_m = type(models)(
        baseline=models.baseline,
        candidate=models.candidate,
        judges=models.judges,
        candidates=[(base, models.candidate)],
    )
    held_work = [(r, 0, 0) for r in splits["heldout"]]
    n_checks = (
        max(settings.judge_check_min, int(len(held_work) * settings.judge_check_fraction))
        if settings.judge_check
        else 0
    )
    reserve = 1.3 * estimate(held_work, base_m, settings, min(n_checks, len(held_work)) * 3)
    if reserve >= budget_usd:
        raise InputError(
            f"--budget-usd {budget_usd:g} does not cover qualifying on the held-out split ({len(held_work)} prompts, "
            f"about ${reserve:.4f} with a 30% margin): raise it, or lower --per-type"
        )
    search_cap = budget_usd - reserve
    judging = select_templates(settings, [prompt_type])[prompt_type]
    loop = _Loop()
    try:

        async def make_runner() -> Runner:
            return Runner(
                cache=CallCache(work / "calls.jsonl"),
                concurrency=settings.concurrency,
                max_retries=settings.max_retries,
                max_spend_usd=search_cap,
                api_keys={
                    n: settings.api_key(n) for n in {models.baseline.name, base.model, *models.judges, reflect_name}
                },
                default_max_tokens=settings.max_tokens_default,
                on_event=emit,
                seed=settings.seed,
                redact=redactor.text if redactor is not None else None,
                redact_id=redactor.digest if redactor is not None else None,
            )

        runner = loop.run(make_runner())
        spent_before = runner.spent
        panel = Panel([make_judge(runner, models.judges[n], settings) for n in settings.judges_for(prompt_type)])
        search = _Search(
            settings=settings,
            prompt_type=prompt_type,
            base=base,
            models=models,
            runner=runner,
            panel=panel,
            template=judging.template.text,
            reflect_spec=reflect_spec,
            loop=loop,
            by_id={r.id: r for r in records},
        )
        start = seed_prompt(records, base)
        calls = max_metric_calls or 6 * (len(splits["train"]) + len(splits["val"]))
        emit(
            "optimize_start",
            {
                "train": len(splits["train"]),
                "val": len(splits["val"]),
                "heldout": len(splits["heldout"]),
                "cap": search_cap,
                "metric_calls": calls,
                "work": str(work),
            },
        )
        stopped = None
        best, seed_val, best_val, n_candidates, metric_calls = start, None, None, 1, 0
        try:
            result: Any = gepa.optimize(
                seed_candidate={"system_prompt": start},
                trainset=splits["train"],
                valset=splits["val"],
                adapter=_Adapter(search),  # type: ignore[arg-type]
                max_metric_calls=calls,
                stop_callbacks=[_stopper(runner, search_cap)],
                reflection_minibatch_size=min(3, len(splits["train"])),
                seed=settings.seed,
                raise_on_exception=True,
                logger=_QuietLogger(emit),
                display_progress_bar=False,
                skip_perfect_score=False,
            )
            chosen = result.best_candidate
            best = chosen["system_prompt"] if isinstance(chosen, dict) else str(chosen)
            seed_val, best_val = result.val_aggregate_scores[0], result.val_aggregate_scores[result.best_idx]
            n_candidates, metric_calls = result.num_candidates, int(result.total_metric_calls or 0)
        except AbortedError as err:  # the search's budget ran out mid-iteration: the best validated prompt so far
            stopped = err.message
            val_ids = {r.id for r in splits["val"]}
            scored = {}
            for entry in search.log:
                if set(entry["ids"]) == val_ids:
                    scored[entry["prompt_sha256"]] = _mean(entry["scores"])
            best_hash = max(scored, key=lambda h: scored[h] or 0.0) if scored else None
            best = search.prompts.get(best_hash or "", start)
        loop.run(runner.settle(5.0))
        search_spent = runner.spent  # all this search has cost, over every session that resumed it
        spent_now = runner.spent - spent_before
    except BaseException:
        loop.close()
        raise

    train_ids, val_ids = {r.id for r in splits["train"]}, {r.id for r in splits["val"]}
    figures = {
        "seed": {
            "train": _split_means(search.log, start, train_ids),
            "val": seed_val if seed_val is not None else _split_means(search.log, start, val_ids),
        },
        "best": {
            "train": _split_means(search.log, best, train_ids),
            "val": best_val if best_val is not None else _split_means(search.log, best, val_ids),
        },
        "candidates_tried": n_candidates,
        "metric_calls": metric_calls,
        "evaluations": len(search.log),
        "spend_usd": round(search_spent, 6),
        "spend_this_session_usd": round(spent_now, 6),
        "search_cap_usd": round(search_cap, 6),
        "stopped": stopped,
    }

    # qualification on the held-out split only, as a normal run
    held_path = _heldout_file(work / "heldout.jsonl", splits["heldout"], sample.weight)
    optimized = CandidateConfig(
        name=f"{base.name}+optimized",
        model=base.model,
        system_prompt=best or None,
        params=dict(base.params),
        last_turns=base.last_turns,
    )
    held_settings = settings.model_copy(
        update={
            "candidate": None,
            "candidates": [optimized],
            "per_type": max(1, len(splits["heldout"])),
            "types": [prompt_type],
            "type_settings": {k: v.model_copy(update={"per_type": None}) for k, v in settings.type_settings.items()},
            "format": None,
            "where": [],
            "prompt_type_field": "prompt_type",
            "max_spend_usd": max(0.0, budget_usd - search_spent),
        }
    )
    emit("optimize_qualify", {"heldout": len(splits["heldout"])})
    try:  # on the search's own event loop: local/ model servers hold that loop's locks
        run = loop.run(acompare(held_path, held_settings, out=out, on_event=emit))
    finally:
        loop.close()
    tv = next((t for t in run.verdict.prompt_types if t.prompt_type == prompt_type), None)
    diff = "\n".join(
        difflib.unified_diff(start.splitlines(), best.splitlines(), "seed prompt", "optimized prompt", lineterm="")
    )
    data: dict[str, Any] = {
        "schema_version": 1,
        "prompt_type": prompt_type,
        "system_prompt": best,
        "system_prompt_sha256": prompt_hash(best),
        "seed_prompt": start,
        "seed_prompt_sha256": prompt_hash(start),
        "baseline": settings.baseline,
        "candidate": {
            "name": base.name,
            "model": base.model,
            "params": dict(base.params) or None,
            "last_turns": base.last_turns,
        },
        "judge": settings.judges_for(prompt_type),
        "reflection_model": reflect_name,
        "cautions": cautions,
        "splits": {
            "method": "prompt cluster, sha256(seed, prompt-type, cluster) -> train 30% / val 20% / held-out 50%",
            "seed": settings.seed,
            **{s: len(splits[s]) for s in SPLITS},
            "ids_sha256": {s: ids_hash(splits[s]) for s in SPLITS},
        },
        "search": figures,
        "heldout": {
            "run_id": run.verdict.run_id,
            "run_dir": str(run.run_dir),
            "verdict": tv.verdict if tv is not None else None,
            "reasons": tv.reasons if tv is not None else [],
            "quality_diff": tv.quality_diff.model_dump() if tv is not None and tv.quality_diff else None,
            "lc_quality_diff": tv.lc_quality_diff.model_dump() if tv is not None and tv.lc_quality_diff else None,
            "cost": tv.cost.model_dump() if tv is not None and tv.cost else None,
            "aborted": run.aborted,
        },
        "eval_cost_usd": round(search_spent + (run.verdict.eval_cost_usd or 0.0), 6),
        "created_at": utc_now(),
    }
    pdir = Path(prompts_dir)
    pdir.mkdir(parents=True, exist_ok=True)
    prompt_file = pdir / f"{_safe(prompt_type)}.json"
    write_json_atomic(prompt_file, data)
    write_json_atomic(work / "search.json", {**data, "log": search.log})
    # the held-out run's reports show the search: the prompt diff and both splits' figures
    from equiv.store import RunDir

    info = dict(run.info)
    info["optimize"] = {
        k: data[k]
        for k in ("prompt_type", "seed_prompt", "system_prompt", "splits", "search", "reflection_model", "cautions")
    }
    info["optimize"]["diff"] = diff
    info["optimize"]["prompt_file"] = str(prompt_file)
    RunDir(run.run_dir).write_run_info(info)
    _rewrite(run.run_dir, info)
    return Outcome(prompt_type, prompt_file, run.run_dir, tv.verdict if tv is not None else "INCONCLUSIVE", data)


def _rewrite(run_dir: Path, info: dict[str, Any]) -> None:
    from equiv.api import reanalyze
    from equiv.pipeline import write_reports

    again = reanalyze(run_dir)
    write_reports(run_dir, again.analysis, again.pairs, again.checks, info)
