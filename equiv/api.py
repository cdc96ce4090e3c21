"""The Python API (SPEC "Python API"): compare, acompare, report, load_run.

Settings are passed as the config keys (``baseline=``, ``candidate=``, ``judge=``, ``per_type=`` ...) on top
of an optional equiv.toml (``config=`` a path, or a `Settings`). The run itself is `equiv.pipeline`'s, the
same as `equiv compare`'s: same run directory, same resume, same verdict.

This module imports only light things at import time (`import equiv` must stay fast); the pipeline and the
statistics are imported when a function is called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from equiv.config import Settings, load_settings
from equiv.errors import InputError
from equiv.schema import Check, Pair, Verdict

if TYPE_CHECKING:
    from equiv.analyze import Analysis
    from equiv.pipeline import RunResult
    from equiv.traffic.paths import TrafficPath

__all__ = ["ModelInfo", "Reanalysis", "Run", "RunInfo", "acompare", "compare", "load_run", "reanalyze", "report"]

Event = Callable[[str, dict[str, Any]], None]

# settings the analysis alone depends on: `report` takes the run's recorded values unless told otherwise
ANALYSIS_KEYS = (
    "margin",
    "alpha",
    "bootstrap",
    "seed",
    "correction",
    "ci",
    "judge_check",
    "judge_calibration",
    "check_margin",
    "type_settings",  # the per-type checks and margins decide which pairs agree and what a gate is
    "max_usd_per_request",  # the cost gate
    "calls_per_task",
    "sequential",
)


class ModelInfo(BaseModel):
    """One model as the run called and priced it (run.json "models")."""

    model_config = ConfigDict(extra="allow")
    litellm_model: str | None = None
    api_base: str | None = None
    input_cost_per_mtok: float | None = None
    output_cost_per_mtok: float | None = None


class RunInfo(BaseModel):
    """run.json: resolved settings, models, template hashes, versions, start/end, eval spend.

    Tolerant: fields a newer (or older) equiv writes are kept as extra attributes, missing ones are None.
    """

    model_config = ConfigDict(extra="allow")
    run_id: str | None = None
    key: str | None = None
    command: str | None = None
    traffic: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, ModelInfo] = Field(default_factory=dict)
    template_hashes: dict[str, str] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    sample: dict[str, Any] = Field(default_factory=dict)
    monthly_volume: dict[str, float | None] = Field(default_factory=dict)
    started_at: str | None = None
    resumed_at: list[str] = Field(default_factory=list)
    finished_at: str | None = None
    eval_cost_usd: float | None = None
    aborted: str | None = None
    run_notes: list[str] = Field(default_factory=list)
    calls: dict[str, Any] = Field(default_factory=dict)
    route: str | None = None
    since: str | None = None


@dataclass
class Run:
    """One run directory, read back: what `equiv report` and the HTML report read."""

    path: Path
    info: RunInfo
    pairs: list[Pair] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    verdict: Verdict | None = None  # None until the run has finished once (no verdict.json yet)

    @property
    def run_id(self) -> str:
        return self.info.run_id or self.path.name


@dataclass
class Reanalysis:
    """`report`'s work in full, for callers that also write the reports (the `equiv report` command)."""

    analysis: Analysis  # the verdict with the per-pair and per-check results it rests on
    settings: Settings
    pairs: list[Pair]
    checks: list[Check] | None
    info: dict[str, Any]
    folder: Path
    history: list[dict[str, Any]] | None = None

    @property
    def verdict(self) -> Verdict:
        return self.analysis.verdict


def _settings(config: str | Path | Settings | None, overrides: dict[str, Any]) -> Settings:
    """A config file (or Settings) with keyword overrides applied; a wrong key or value is InputError naming it."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(given.get("types"), str):  # types="a,b" as on the command line
        given["types"] = [t.strip() for t in given["types"].split(",") if t.strip()]
    if isinstance(config, Settings):
        data = {**config.model_dump(exclude_unset=True), **given}
        settings = load_settings(None, data)
        settings.base_dir = config.base_dir
        return settings
    return load_settings(config, given)


def window_start(since: str | datetime | None) -> datetime | None:
    """`since` as a start time. A relative window (7d) starts on the hour, so the same command re-run within
    the hour has the same run key and resumes instead of starting over a second later."""
    if since is None or isinstance(since, datetime):
        return since
    from equiv.cli.options import is_relative, parse_since

    start = parse_since(since)
    if is_relative(since):
        start = start.replace(minute=0, second=0, microsecond=0)
    return start


def _run_args(
    traffic: TrafficPath,
    config: str | Path | Settings | None,
    settings: dict[str, Any],
    on_event: Event | None,
) -> tuple[TrafficPath, Settings, dict[str, Any]]:
    run: dict[str, Any] = {
        "out": Path(settings.pop("out", None) or "reports"),
        "resume": settings.pop("resume", None),
        "fresh": bool(settings.pop("fresh", False)),
        "since": window_start(settings.pop("since", None)),
        "on_event": on_event or _log_event,
    }
    return traffic, _settings(config, settings), run


def compare(
    traffic: TrafficPath,
    *,
    config: str | Path | Settings | None = None,
    on_event: Event | None = None,
    **settings: Any,
) -> RunResult:
    """Run (or resume) a comparison, as `equiv compare` does, and return its result.

    ``settings`` are config keys (``baseline=``, ``candidate=``, ``judge=``, ``per_type=``, ``margin=`` ...)
    plus the run's place: ``out=`` (parent folder, default "reports"), ``resume=`` (a run directory),
    ``fresh=True`` (a new run even if one matches), ``since=`` ("7d" or a datetime).
    ``on_event(kind, data)`` sees the pipeline's events ("estimate", "phase", "pair", "check", "call",
    "retry", "aborted"); by default the estimate and an abort are logged on the "equiv" logger.

    Works in a script, in a notebook and inside a running event loop (the run then has its own loop in a
    worker thread; this call blocks until it is done). Raises `EquivError` on bad input; a run stopped at
    the spend cap or by an authentication failure returns with ``result.aborted`` set.
    """
    from equiv.pipeline import compare as run_compare  # numpy, scipy: only when called

    path, s, run = _run_args(traffic, config, settings, on_event)
    return run_compare(path, s, **run)


async def acompare(
    traffic: TrafficPath,
    *,
    config: str | Path | Settings | None = None,
    on_event: Event | None = None,
    **settings: Any,
) -> RunResult:
    """`compare` as a coroutine (same arguments): ``result = await equiv.acompare(...)``."""
    from equiv.pipeline import acompare as run_acompare

    path, s, run = _run_args(traffic, config, settings, on_event)
    return await run_acompare(path, s, **run)


def _log_event(kind: str, data: dict[str, Any]) -> None:
    import logging

    log = logging.getLogger("equiv")
    if kind == "estimate":
        log.info(
            "run directory %s: %s pairs to run + ~%s judge checks; estimated evaluation cost $%.4f (cap $%.2f)",
            data.get("run_dir"),
            data.get("pairs"),
            data.get("checks"),
            data.get("usd", 0.0),
            data.get("cap", 0.0),
        )
    elif kind == "aborted":
        log.warning("stopping: %s", data.get("reason"))


def reanalyze(
    run_dir_or_pairs: str | Path, *, config: str | Path | Settings | None = None, **settings: Any
) -> Reanalysis:
    """The analysis of a finished (or partial) run from its pairs.jsonl alone: no model calls, nothing written.

    Settings, lowest first: the run's own analysis settings (run.json), the config file, the keywords.
    The same steps as `equiv report`, which then writes what this returns.
    """
    from equiv.analyze import analyze_run
    from equiv.labels import load_labels
    from equiv.store import load_pairs_from

    target = Path(run_dir_or_pairs)
    pairs, checks, info, folder = load_pairs_from(target)
    if not pairs:
        raise InputError(f"{target}: no pairs to analyze")
    recorded = {k: v for k, v in (info.get("settings") or {}).items() if k in ANALYSIS_KEYS}
    in_file = _settings(config, {}).model_fields_set
    overrides = {k: v for k, v in recorded.items() if k not in in_file}
    overrides.update({k: v for k, v in settings.items() if v is not None})
    s = _settings(config, overrides)
    if s.types:
        wanted = set(s.types)
        pairs = [p for p in pairs if p.prompt_type in wanted]
    run_id = str(info.get("run_id") or folder.name)
    # checks that ran are always handed over: with judge_check off they are reported but do not block
    analysis = analyze_run(
        pairs,
        checks,
        s,
        run_id=run_id,
        eval_cost_usd=info.get("eval_cost_usd"),
        monthly_volume=info.get("monthly_volume"),
        aborted=info.get("aborted"),
        planned_checks=info.get("judge_checks_planned"),
        labels=load_labels(folder),
        candidates=info.get("candidates"),
        sequential_order=(info.get("sequential") or {}).get("order"),
        sequential_scale=(info.get("sequential") or {}).get("weight_scale"),
        eval_cost_realtime_usd=info.get("eval_cost_realtime_usd"),
    )
    verdict = analysis.verdict
    # what the run knew beside its pairs (skipped records, failures by reason ...), as compare reported it
    verdict.notes.extend(n for n in info.get("run_notes") or [] if n not in verdict.notes)
    history = None
    if info.get("route"):  # a qualify/nightly run: its route's trend, and the regressions nightly found
        from equiv.history import HISTORY_FILE, read_history

        history = read_history(folder.parent / HISTORY_FILE, str(info["route"]))[0] or None
        for entry in history or []:
            if entry.get("run_id") == run_id:
                verdict.notes.extend(f"REGRESSION {r}" for r in entry.get("regressions") or [])
                verdict.notes.extend(f"WARNING {w}" for w in entry.get("warnings") or [])  # nightly: not alarms
    return Reanalysis(
        analysis=analysis, settings=s, pairs=pairs, checks=checks, info=info, folder=folder, history=history
    )


def report(run_dir_or_pairs: str | Path, *, config: str | Path | Settings | None = None, **settings: Any) -> Verdict:
    """Re-analyze a run from its pairs.jsonl (new ``margin=``, ``alpha=``, ``correction=`` ...) and return the
    Verdict. No model calls, and nothing is written: the run's own verdict.json and reports stay as they are."""
    return reanalyze(run_dir_or_pairs, config=config, **settings).verdict


def load_run(run_dir: str | Path) -> Run:
    """A run directory read back, typed: ``.info`` (run.json), ``.pairs``, ``.checks``, ``.verdict``."""
    from equiv.store import CHECKS, PAIRS, RUN, VERDICT, RunDir

    path = Path(run_dir)
    if path.is_file() and path.name in (PAIRS, RUN, VERDICT):
        path = path.parent
    run = RunDir(path)
    if not path.is_dir() or not (run.file(RUN).exists() or run.file(PAIRS).exists()):
        raise InputError(f"{run_dir}: not a run directory (no {RUN} or {PAIRS} in it)")
    verdict = None
    if run.file(VERDICT).exists():
        try:
            verdict = Verdict.model_validate_json(run.file(VERDICT).read_bytes())
        except ValueError as err:
            raise InputError(f"{run.file(VERDICT)}: not a verdict.json: {str(err).splitlines()[0]}") from None
    return Run(
        path=path,
        info=RunInfo.model_validate(run.read_run_info()),
        pairs=run.load_pairs(),
        checks=run.load_checks() if run.file(CHECKS).exists() else [],
        verdict=verdict,
    )
