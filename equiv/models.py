"""The run's models resolved before anything else: prices, keys, and the judge-family guard (exit 2 if wrong)."""

from __future__ import annotations

from dataclasses import dataclass, field

from equiv.config import CandidateConfig, Settings
from equiv.errors import InputError
from equiv.llm import client
from equiv.llm.client import ModelSpec
from equiv.notes import model_family


@dataclass
class Models:
    baseline: ModelSpec
    candidate: ModelSpec
    judges: dict[str, ModelSpec]  # every judge any prompt-type uses (a panel: several), top-level first
    # every candidate configuration with its model (SPEC "Candidates"); `candidate` is the first one's
    candidates: list[tuple[CandidateConfig, ModelSpec]] = field(default_factory=list)

    @property
    def judge(self) -> ModelSpec:
        """The first (top-level) judge."""
        return next(iter(self.judges.values()))

    def panel(self, settings: Settings, prompt_type: str) -> list[ModelSpec]:
        return [self.judges[name] for name in settings.judges_for(prompt_type)]


def family_clashes(settings: Settings) -> list[tuple[str, str, str]]:
    """(judge, role, model) for each judge sharing the baseline's or candidate's model family."""
    out = []
    for judge in settings.all_judges():
        for role, other in (("baseline", settings.baseline), *(("candidate", c) for c in settings.candidate_models)):
            if other and (other == judge or model_family(other) == model_family(judge)):
                out.append((judge, role, other))
    return out


def resolve_models(settings: Settings) -> Models:
    """Every model's price and key are checked before anything else happens (exit 2 if missing)."""
    from equiv.candidates import resolve_candidates

    if not settings.baseline:
        raise InputError("name both models: --baseline MODEL --candidate MODEL (or baseline/candidate in the config)")
    cands = resolve_candidates(settings)
    if settings.judge_family == "strict":
        clashes = family_clashes(settings)
        if clashes:
            judge, role, other = clashes[0]
            raise InputError(
                f'judge_family = "strict": the judge {judge} is from the {role}\'s model family '
                f"({model_family(judge)}, like {other}); choose a judge from another family"
            )
    judges = {name: client.resolve_model(name, settings) for name in settings.all_judges()}
    by_model = {name: client.resolve_model(name, settings) for name in dict.fromkeys(c.model for c in cands)}
    specs = Models(
        baseline=client.resolve_model(settings.baseline, settings),
        candidate=by_model[cands[0].model],
        judges=judges,
        candidates=[(c, by_model[c.model]) for c in cands],
    )
    for name in {settings.baseline, *by_model, *judges}:
        settings.api_key(name)  # raises if its api_key_env is named but unset
    # a key litellm would read from the environment and cannot find: exit 2 now, naming it (the logged
    # baseline is never called, so its key is not needed)
    called = [*by_model.values(), *judges.values()] + ([specs.baseline] if settings.baseline_source == "rerun" else [])
    client.check_credentials(called, settings)
    return specs
