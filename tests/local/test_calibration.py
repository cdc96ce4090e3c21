"""A local judge's logprobs, end to end on the fake backend through litellm: recorded in pairs.jsonl, and
judge_calibration = "position" reading from an always-"A" judge that the candidate is worse."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from equiv.cli import _register, app
from equiv.judging.pairwise import verdict_logprobs
from equiv.llm.client import first_token_logprobs

from .conftest import fake_gguf
from .test_cli import _traffic


def _config(folder: Path, calibration: str) -> Path:
    cfg = folder / f"equiv-{calibration}.toml"
    cfg.write_text(
        'baseline = "local/base"\ncandidate = "local/cand"\njudge = "local/judge"\nbootstrap = 1000\n'
        f'concurrency = 4\njudge_check_min = 10\njudge_calibration = "{calibration}"\n'
        f'[models."local/base"]\ngguf = "{fake_gguf(folder, "skill-99")}"\n'
        "input_cost_per_mtok = 0.03\noutput_cost_per_mtok = 0.06\n"
        f'[models."local/cand"]\ngguf = "{fake_gguf(folder, "skill-30")}"\n'
        "input_cost_per_mtok = 0.01\noutput_cost_per_mtok = 0.02\n"
        f'[models."local/judge"]\ngguf = "{fake_gguf(folder, "judge-biased")}"\n'
    )
    return cfg


def _run(folder: Path, calibration: str) -> tuple[dict, Path]:  # type: ignore[type-arg]
    _register()
    out = folder / f"reports-{calibration}"
    r = CliRunner().invoke(
        app,
        [
            "compare",
            str(_traffic(folder, n=40)),
            "--config",
            str(_config(folder, calibration)),
            "--out",
            str(out),
            "-q",
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    run_dir = next(out.iterdir())
    return json.loads((run_dir / "verdict.json").read_text())["prompt_types"][0], run_dir


def test_calibration_recovers_what_an_always_a_judge_cannot_say(fake_backend: Path) -> None:
    raw, run_dir = _run(fake_backend, "none")
    pairs = [json.loads(line) for line in (run_dir / "pairs.jsonl").read_text().splitlines()]
    judgments = [j for p in pairs for j in p["judgments"]]
    assert judgments and all(j["winner"] == "A" for j in judgments)  # what the judge wrote
    assert all(set(j["logprobs"]) == {"A", "B", "tie"} for j in judgments)  # and what it weighed
    assert raw["verdict"] == "INCONCLUSIVE" and raw["judge_check"]["pass_rate"] == 0.0
    assert raw["quality_diff"]["estimate"] == 0.0

    cal, _ = _run(fake_backend, "position")
    assert cal["verdict"] == "NO_GO" and cal["quality_diff"]["ci_high"] < -0.1  # the candidate is far worse
    assert cal["diagnostics"]["calibration"]["n_pairs"] == 40
    assert cal["judge_check"]["pass_rate"] == 0.0  # the check reads the judge's own words: never a GO from it

    # the same run re-analyzed from pairs.jsonl alone, both ways
    r = CliRunner().invoke(
        app,
        ["report", str(run_dir), "--judge-calibration", "position", "--out", str(fake_backend / "re")],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    again = json.loads((fake_backend / "re" / "verdict.json").read_text())["prompt_types"][0]
    assert again["verdict"] == "NO_GO" and again["quality_diff"] == cal["quality_diff"]
    r = CliRunner().invoke(app, ["report", str(run_dir), "--judge-calibration", "sideways"])
    assert r.exit_code == 2 and "judge_calibration" in r.output and "Traceback" not in r.output


def test_first_token_logprobs_reads_the_openai_shape() -> None:
    choice = {
        "logprobs": {
            "content": [
                {
                    "token": "A",
                    "logprob": -0.2,
                    "top_logprobs": [
                        {"token": "A", "logprob": -0.2},
                        {"token": "B", "logprob": -1.9},
                        {"token": " tie", "logprob": -6.0},
                    ],
                }
            ]
        }
    }
    alts = first_token_logprobs(choice)
    assert alts == {"A": -0.2, "B": -1.9, " tie": -6.0}
    assert verdict_logprobs(alts) == {"A": -0.2, "B": -1.9, "tie": -6.0}  # unlisted "tie": the floor
    assert first_token_logprobs({"logprobs": None}) is None and verdict_logprobs({"x": -1.0}) is None
    # a server that returns only the chosen token: no B to compare with, so nothing is recorded (not a floor)
    only = first_token_logprobs({"logprobs": {"content": [{"token": "A", "logprob": -0.01}]}})
    assert only == {"A": -0.01} and verdict_logprobs(only) is None
