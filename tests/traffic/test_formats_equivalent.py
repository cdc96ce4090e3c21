"""Every traffic format, end to end: the same calls exported in each tool's own shape give the same comparison
as the native file (SPEC "Where traffic lives"): prompt-types, counts, the quality estimate and interval, and
the baseline's cost, which each format must take from its own usage fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from equiv import api

DATA = Path(__file__).parent.parent / "data" / "traffic_formats"
SETTINGS: dict[str, Any] = {
    "baseline": "gpt-4o",
    "candidate": "fake/skill-90",
    "judge": "fake/judge",
    "per_type": 12,
    "bootstrap": 1000,
    "judge_check": False,
}
FORMATS = {
    "openai-batch": DATA / "openai_batch",
    "litellm-spendlogs": DATA / "litellm_spendlogs.json",
    "litellm-payload": DATA / "litellm_payload.jsonl",
    "langfuse (API page)": DATA / "langfuse_api.json",
    "langfuse (observations_v2)": DATA / "langfuse_observations_v2.jsonl",
    "helicone": DATA / "helicone.jsonl",
    "otel-genai": DATA / "otel_genai.jsonl",
    "otel-genai (events)": DATA / "otel_genai_events.jsonl",
}


def _summary(traffic: Path, out: Path) -> dict[str, Any]:
    result = api.compare(traffic, out=out, **SETTINGS)
    verdict = json.loads((result.run_dir / "verdict.json").read_text())
    return {
        t["prompt_type"]: {
            "n": t["n"],
            "verdict": t["verdict"],
            "quality": t["quality_diff"],
            "baseline_cost": t["cost"]["baseline_usd_per_request"],
            "monthly_requests": t["cost"]["monthly_requests"],
        }
        for t in verdict["prompt_types"]
    }


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _summary(DATA / "native.jsonl", tmp_path_factory.mktemp("native"))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_a_tools_export_compares_as_the_native_file(name: str, native: dict[str, Any], tmp_path: Path) -> None:
    assert set(native) == {"ticket-triage", "summary", "invoice-extraction"}
    got = _summary(FORMATS[name], tmp_path)
    assert got.keys() == native.keys()
    for t, want in native.items():
        assert got[t]["n"] == want["n"] == 12
        assert got[t]["verdict"] == want["verdict"]
        assert got[t]["quality"] == pytest.approx(want["quality"])
        assert got[t]["baseline_cost"] == pytest.approx(want["baseline_cost"], rel=1e-12)
        assert got[t]["monthly_requests"] == pytest.approx(want["monthly_requests"], rel=1e-9)  # timestamps
