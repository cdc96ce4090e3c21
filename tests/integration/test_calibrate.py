"""`equiv calibrate LABELS --judge M` end to end: a real OpenAI-compatible server on 127.0.0.1, through litellm.

The judge (the server's coverage judge) always prefers the answer that mentions more of the question's
words. The labels are drawn so that the gold side is that answer with probability p per prompt-type, so
the judge's true accuracy (ties excluded) is p, and calibration.json must find it, within its interval.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from equiv.testing.loopback import LoopbackServer

from .conftest import WORDS, only_run_dir, write_jsonl

ACCURACY = {"qa": 0.9, "chat": 0.6}  # the judge's accuracy against gold, per prompt-type
N_DECISIVE = 150  # pairs per type with a better answer
N_IDENTICAL = 5  # pairs per type whose two answers are the same (after strip): never judged
FILLER = "indeed basically honestly overall generally notably".split()  # no question word: not a fact
REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "pandalm_human.labels.jsonl"


def _answer(words: list[str], pad: int) -> str:
    return " ".join(words + FILLER[:pad]) + "."


def make_labels(seed: int = 11) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Labelled pairs and, per type, the judge's and the length judge's realized agreement (ties excluded).

    The better answer mentions 6 of the question's 10 words, the worse one 2; on half of the pairs the
    worse answer is padded to be the longer one, so "the longer answer wins" is right about half the time.
    """
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    realized: dict[str, dict[str, float]] = {}
    for t, p in ACCURACY.items():
        judge_right = length_right = 0
        for i in range(N_DECISIVE + N_IDENTICAL):
            words = rng.sample(WORDS, 10)
            messages = [{"role": "user", "content": f"[{t}] ticket {i}: " + " ".join(words)}]
            good, bad = _answer(words[:6], 0), _answer(words[6:8], 0)
            if i % 2:  # the worse answer is the longer one
                bad = _answer(words[6:8], 6)
            good_side = rng.choice(["baseline", "candidate"])
            other = "candidate" if good_side == "baseline" else "baseline"
            if i >= N_DECISIVE:
                sides, gold = {"baseline": good, "candidate": f"  {good}\n"}, "tie"
            else:
                sides = {good_side: good, other: bad}
                right = rng.random() < p
                gold = good_side if right else other
                judge_right += right
                longer = good_side if len(good) > len(bad) else other
                length_right += longer == gold
            rows.append(
                {
                    "pair_id": f"{t}-{i:04d}",
                    "prompt_type": t,
                    "messages": messages,
                    "baseline": {"model": "base", "source": "logged", "output": sides["baseline"]},
                    "candidate": {"model": "cand", "source": "run", "output": sides["candidate"]},
                    "judgments": [],
                    "error": None,
                    "gold": gold,
                }
            )
        realized[t] = {"judge": judge_right / N_DECISIVE, "length": length_right / N_DECISIVE}
    return rows, realized


def write_config(path: Path, srv: LoopbackServer, judge: str = "judge", **top: Any) -> Path:
    lines = [f'judge = "openai/{judge}"']
    for k, v in {"concurrency": 8, "bootstrap": 2000, "max_spend_usd": 5.0, "timeout_s": 5.0, **top}.items():
        lines.append(f"{k} = {json.dumps(v)}")
    lines += [
        f'[models."openai/{judge}"]',
        f'api_base = "{srv.base_url}"',
        "input_cost_per_mtok = 2.0",
        "output_cost_per_mtok = 8.0",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _covers(iv: dict[str, float], value: float) -> bool:
    return iv["ci_low"] <= value <= iv["ci_high"]


def test_calibration_finds_the_judges_known_accuracy_and_a_rerun_buys_nothing(
    tmp_path: Path, server: LoopbackServer, equiv_cli: Any
) -> None:
    rows, realized = make_labels()
    labels = write_jsonl(tmp_path / "labels.jsonl", rows)
    cfg = write_config(tmp_path / "equiv.toml", server)
    out = tmp_path / "reports"
    args = ("calibrate", str(labels), "--config", str(cfg), "--out", str(out), "-q")

    r = equiv_cli(*args)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "estimated evaluation cost $" in r.stderr and "judge calls" in r.stderr  # printed before any call
    n_decisive = N_DECISIVE * len(ACCURACY)
    assert len(server.requests) == 2 * n_decisive  # both orders; identical answers make no call
    run = only_run_dir(out)
    cal = json.loads((run / "calibration.json").read_text())
    assert cal["judge"] == "openai/judge" and cal["n_failed"] == 0
    assert cal["n"] == (N_DECISIVE + N_IDENTICAL) * len(ACCURACY) and cal["n_identical"] == N_IDENTICAL * 2
    assert cal["n_without_ties"] == n_decisive
    assert cal["position_consistency"]["estimate"] == 1.0

    measured: dict[str, dict[str, float]] = {}
    for row in cal["prompt_types"]:
        t, p = row["prompt_type"], ACCURACY[row["prompt_type"]]
        est = row["agreement_without_ties"]
        measured[t] = {"estimate": est["estimate"], "ci_low": est["ci_low"], "ci_high": est["ci_high"]}
        assert est["estimate"] == pytest.approx(realized[t]["judge"])  # exactly the share drawn
        assert abs(est["estimate"] - p) < 0.07, (t, est, p)  # close to the judge's true accuracy
        assert _covers(est, p), (t, est, p)  # and its interval covers it
        assert row["n"] == N_DECISIVE + N_IDENTICAL and row["n_identical"] == N_IDENTICAL
        base = row["baselines"]["longer_answer_wins"]["agreement_without_ties"]
        assert base["estimate"] == pytest.approx(realized[t]["length"])
        assert _covers(base, 0.5)  # the length judge is right about half the time here
        for key in ("agreement", "kappa", "position_consistency"):
            assert set(row[key]) == {"estimate", "ci_low", "ci_high"}
    assert measured["qa"]["ci_low"] > 0.6  # the judge clearly beats length on qa ...
    overall = cal["agreement_without_ties"]
    assert _covers(overall, sum(ACCURACY.values()) / len(ACCURACY))
    print("calibration measured:", json.dumps(measured), "realized:", json.dumps(realized))

    info = json.loads((run / "run.json").read_text())
    assert info["command"] == "calibrate" and info["judge"] == "openai/judge"
    assert info["calls"]["bought_this_session"] == 2 * n_decisive
    assert info["counts"]["labelled"] == len(rows) and info["counts"]["identical"] == N_IDENTICAL * 2
    assert info["eval_cost_usd"] == cal["eval_cost_usd"] > 0
    judged = [json.loads(x) for x in (run / "pairs.jsonl").read_text().splitlines()]
    assert [p["gold"] for p in judged] == [x["gold"] for x in rows]
    assert "qa" in r.stdout and "chat" in r.stdout  # the table

    # the same command again: the run directory is found by its key, nothing is bought, same figures
    server.reset_stats()
    r = equiv_cli(*args)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert only_run_dir(out) == run and len(server.requests) == 0
    assert json.loads((run / "run.json").read_text())["calls"]["bought_this_session"] == 0
    again = json.loads((run / "calibration.json").read_text())
    assert again["prompt_types"] == cal["prompt_types"]

    # a run killed half-way (pairs.jsonl cut): resumed from the call cache, still nothing bought
    lines = (run / "pairs.jsonl").read_text().splitlines(keepends=True)
    (run / "pairs.jsonl").write_text("".join(lines[: len(lines) // 2]))
    r = equiv_cli(*args)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert len(server.requests) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["calls"]["bought_this_session"] == 0 and info["calls"]["cache_hits"] > 0
    assert json.loads((run / "calibration.json").read_text())["prompt_types"] == cal["prompt_types"]


def test_the_subset_is_reproducible_and_keys_its_own_run(
    tmp_path: Path, server: LoopbackServer, equiv_cli: Any
) -> None:
    rows, _ = make_labels()
    labels = write_jsonl(tmp_path / "labels.jsonl", rows)
    cfg = write_config(tmp_path / "equiv.toml", server)
    picked = []
    for out in ("a", "b"):
        r = equiv_cli("calibrate", str(labels), "--config", str(cfg), "--out", str(tmp_path / out), "--n", "30", "-q")
        assert r.exit_code == 0, r.stdout + r.stderr
        run = only_run_dir(tmp_path / out)
        picked.append([json.loads(x)["pair_id"] for x in (run / "pairs.jsonl").read_text().splitlines()])
        cal = json.loads((run / "calibration.json").read_text())
        assert cal["n"] == 30 and {t["prompt_type"]: t["n"] for t in cal["prompt_types"]} == {"qa": 15, "chat": 15}
    assert picked[0] == picked[1]
    r = equiv_cli("calibrate", str(labels), "--config", str(cfg), "--out", str(tmp_path / "a"), "--n", "20", "-q")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert len([p for p in (tmp_path / "a").iterdir() if p.is_dir()]) == 2  # another --n is another run


def test_a_failed_judge_call_is_recorded_counted_and_left_out(tmp_path: Path, equiv_cli: Any) -> None:
    rows = make_labels()[0][:40]  # qa pairs, all decisive
    labels = write_jsonl(tmp_path / "labels.jsonl", rows)
    with LoopbackServer(seed=5, rate_garbage=0.3) as srv:
        cfg = write_config(tmp_path / "equiv.toml", srv, judge_retries=0)
        r = equiv_cli("calibrate", str(labels), "--config", str(cfg), "--out", str(tmp_path / "r"), "-q")
    assert r.exit_code == 0, r.stdout + r.stderr
    run = only_run_dir(tmp_path / "r")
    cal = json.loads((run / "calibration.json").read_text())
    judged = [json.loads(x) for x in (run / "pairs.jsonl").read_text().splitlines()]
    failed = [p for p in judged if p["judge_failures"]]
    assert failed and cal["n_failed"] == len(failed) and cal["n"] + cal["n_failed"] == len(rows)
    assert all(p["error"].startswith("judge failed in") for p in failed)
    assert all(f["error"].startswith("unparseable judge reply") for p in failed for f in p["judge_failures"])
    assert json.loads((run / "run.json").read_text())["counts"]["judge_failures"] == len(failed)
    assert "failed" in r.stdout


def test_the_spend_cap_stops_the_run_with_exit_4(tmp_path: Path, server: LoopbackServer, equiv_cli: Any) -> None:
    rows = make_labels()[0][:20]
    labels = write_jsonl(tmp_path / "labels.jsonl", rows)
    cfg = write_config(tmp_path / "equiv.toml", server, concurrency=1)
    r = equiv_cli("calibrate", str(labels), "--config", str(cfg), "--out", str(tmp_path / "r"), "--max-spend", "0.01")
    assert r.exit_code == 4, r.stdout + r.stderr
    assert "max_spend_usd" in r.stderr and "Traceback" not in r.stderr
    run = only_run_dir(tmp_path / "r")
    cal = json.loads((run / "calibration.json").read_text())
    assert cal["aborted"] and cal["n"] + cal["n_not_judged"] == len(rows)
    assert 0 < len(server.requests) < 2 * len(rows) and cal["eval_cost_usd"] <= 0.01


@pytest.mark.skipif(not REALDATA.is_file(), reason="../shared/realdata/pandalm_human.labels.jsonl not present")
def test_pandalm_human_labels_through_a_fake_judge(tmp_path: Path, equiv_cli: Any) -> None:
    """894 PandaLM pairs with human votes, read in place: a 40-pair subset through fake/judge (litellm's
    in-package provider), and calibration.json is well-formed."""
    out = tmp_path / "reports"
    r = equiv_cli("calibrate", str(REALDATA), "--judge", "fake/judge", "--n", "40", "--out", str(out), "-q")
    assert r.exit_code == 0, r.stdout + r.stderr
    run = only_run_dir(out)
    cal = json.loads((run / "calibration.json").read_text())
    assert cal["judge"] == "fake/judge" and cal["n"] + cal["n_failed"] == 40
    assert sum(cal["gold"].values()) == 40 and set(cal["gold"]) == {"baseline", "candidate", "tie"}
    assert [t["prompt_type"] for t in cal["prompt_types"]] == ["pandalm"]
    for block in (cal, cal["prompt_types"][0]):
        for key in ("agreement", "agreement_without_ties", "kappa", "position_consistency"):
            iv = block[key]
            assert iv is None or iv["ci_low"] <= iv["estimate"] <= iv["ci_high"], (key, iv)
        assert 0 <= block["n_without_ties"] <= block["n"]
        base = block["baselines"]["longer_answer_wins"]
        assert set(base) == {"n_without_ties", "agreement", "agreement_without_ties", "kappa"}
    assert cal["agreement"] is not None and 0.0 <= cal["agreement"]["estimate"] <= 1.0
    judged = [json.loads(x) for x in (run / "pairs.jsonl").read_text().splitlines()]
    assert len(judged) == 40 and all(p["pair_id"].startswith("pandalm-") and p["gold"] for p in judged)
    info = json.loads((run / "run.json").read_text())
    assert info["counts"]["labelled"] == 40 and info["labels"] == str(REALDATA)


def test_a_local_judge_is_called_as_compare_calls_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, equiv_cli: Any
) -> None:
    """local/ judges: served for the run (the fake backend of equiv.local.serve), with the prefilled verdict
    word, as equiv compare calls them (equiv.judging.pairwise.make_judge)."""
    from tests.local.conftest import fake_gguf

    monkeypatch.setenv("EQUIV_LOCAL_BACKEND", "fake")
    monkeypatch.setenv("EQUIV_MODEL_CACHE", str(tmp_path / "cache"))
    rows = make_labels()[0][:20]
    labels = write_jsonl(tmp_path / "labels.jsonl", rows)
    cfg = tmp_path / "equiv.toml"
    cfg.write_text(
        'judge = "local/judge"\nbootstrap = 1000\nconcurrency = 4\n'
        f'[models."local/judge"]\ngguf = "{fake_gguf(tmp_path, "judge")}"\n'
    )
    r = equiv_cli("calibrate", str(labels), "--config", str(cfg), "--out", str(tmp_path / "r"), "-q")
    assert r.exit_code == 0, r.stdout + r.stderr
    run = only_run_dir(tmp_path / "r")
    cal = json.loads((run / "calibration.json").read_text())
    assert cal["judge"] == "local/judge" and cal["n"] == 20 and cal["n_failed"] == 0
    assert cal["position_consistency"]["estimate"] == 1.0

    # the first 20 qa pairs are decisive; the judge picks the answer with more of the question's words
    def richer(x: dict[str, Any]) -> str:
        asked = set(x["messages"][0]["content"].split())
        hits = {s: len(asked & set(x[s]["output"].rstrip(".").split())) for s in ("baseline", "candidate")}
        return max(hits, key=lambda s: hits[s])

    right = sum(richer(x) == x["gold"] for x in rows)
    assert cal["n_without_ties"] == 20
    assert cal["agreement_without_ties"]["estimate"] == pytest.approx(right / 20)
    judged = [json.loads(x) for x in (run / "pairs.jsonl").read_text().splitlines()]
    assert all(len(p["judgments"]) == 2 and all(j["reason"] == "" for j in p["judgments"]) for p in judged)
    assert cal["eval_cost_usd"] == 0.0  # served on this machine, priced at $0 unless the config prices it
