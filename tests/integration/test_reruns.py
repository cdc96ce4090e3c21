"""Nothing bought twice in one --out folder (counted at the provider), duplicates are one prompt, and a
re-analysis keeps the run's own verdict (issue 12: points 2, 8 and the newcomer's `report --margin`)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from equiv.testing.loopback import LoopbackServer

from .conftest import load_verdict, make_records, only_run_dir, write_config, write_jsonl


def _compare(equiv_cli, traffic: Path, config: Path, out: Path, *extra: str):
    r = equiv_cli("compare", str(traffic), "--config", str(config), "--out", str(out), "--quiet", *extra)
    assert r.exit_code in (0, 3), r.stderr
    return r


def test_a_larger_per_type_buys_only_the_new_prompts(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 150))
    config = write_config(tmp_path / "equiv.toml", server, baseline="skill-95", candidate="skill-99-v2")
    out = tmp_path / "reports"
    _compare(equiv_cli, traffic, config, out, "--per-type", "60")
    first_keys = set(server.counts_by_key())
    first = Counter(q["model"] for q in server.requests)
    server.reset_stats()
    _compare(equiv_cli, traffic, config, out, "--per-type", "120")
    runs = sorted((p for p in out.iterdir() if p.is_dir()), key=lambda p: len((p / "pairs.jsonl").read_text()))
    ids = [{json.loads(line)["pair_id"] for line in (r / "pairs.jsonl").read_text().splitlines()} for r in runs]
    assert len(ids[0]) == 60 and len(ids[1]) == 120 and ids[0] < ids[1]  # a superset
    second = Counter(q["model"] for q in server.requests)
    assert first["skill-99-v2"] == 60 and second["skill-99-v2"] == 60  # only the 60 new prompts' answers
    assert not first_keys & set(server.counts_by_key())  # nothing the first run bought was bought again
    # judge calls: the 60 new pairs in two orders (identical answers share one call) and 2 new checks
    assert second["judge"] <= 2 * 60 + 2 * 2
    planned = [json.loads((r / "run.json").read_text())["judge_checks_planned"] for r in runs]
    assert planned == [{"triage": 10}, {"triage": 12}]


def test_a_corrected_price_or_timeout_re_buys_nothing(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 40))
    config = write_config(tmp_path / "equiv.toml", server, baseline="skill-95", candidate="skill-99-v2")
    out = tmp_path / "reports"
    _compare(equiv_cli, traffic, config, out)
    bought = len(server.requests)
    first_dir = only_run_dir(out)
    first = load_verdict(first_dir)
    text = config.read_text().replace("output_cost_per_mtok = 0.6", "output_cost_per_mtok = 0.3")
    config.write_text(text.replace("timeout_s = 5.0", "timeout_s = 7.0"))
    _compare(equiv_cli, traffic, config, out)
    assert len(server.requests) == bought  # nothing bought again
    (newest,) = [p for p in out.iterdir() if p.is_dir() and p != first_dir]
    second = load_verdict(newest)
    c1, c2 = first["prompt_types"][0]["cost"], second["prompt_types"][0]["cost"]
    assert c2["candidate_usd_per_request"] < c1["candidate_usd_per_request"]  # re-priced, not re-bought
    assert second["eval_cost_usd"] == 0.0


def test_duplicated_prompts_are_one_prompt_and_cannot_make_a_go(
    equiv_cli, tmp_path: Path, server: LoopbackServer
) -> None:
    base = make_records(["triage"], 3)
    rows = [{**r, "id": f"{r['id']}-copy{k}"} for r in base for k in range(20)]  # 3 prompts, 20 copies each
    traffic = write_jsonl(tmp_path / "traffic.jsonl", rows)
    config = write_config(tmp_path / "equiv.toml", server, baseline="skill-95", candidate="skill-99-v2")
    out = tmp_path / "reports"
    _compare(equiv_cli, traffic, config, out)
    t = load_verdict(only_run_dir(out))["prompt_types"][0]
    assert t["n_prompts"] == 3 and t["verdict"] == "INCONCLUSIVE"
    cand_calls = [q for q in server.requests if q.get("model") == "skill-99-v2"]
    assert len(cand_calls) == 3  # each distinct prompt bought once
    pairs = [json.loads(line) for line in (only_run_dir(out) / "pairs.jsonl").read_text().splitlines()]
    assert sorted(p["weight"] for p in pairs) == [20, 20, 20]


def test_report_with_another_margin_keeps_the_runs_verdict(equiv_cli, tmp_path: Path, server: LoopbackServer) -> None:
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 40))
    config = write_config(tmp_path / "equiv.toml", server, baseline="skill-95", candidate="skill-99-v2")
    out = tmp_path / "reports"
    _compare(equiv_cli, traffic, config, out)
    run = only_run_dir(out)
    before = {n: (run / n).read_bytes() for n in ("verdict.json", "summary.md", "report.html")}
    r = equiv_cli("report", str(run), "--margin", "0.05")
    assert r.exit_code == 0, r.stderr
    assert {n: (run / n).read_bytes() for n in before} == before  # the original verdict is not destroyed
    (again,) = (run / "reanalysis").iterdir()
    assert json.loads((again / "verdict.json").read_text())["margin"] == 0.05
    recorded = json.loads((again / "reanalysis.json").read_text())
    assert "--margin 0.05" in recorded["command"]
    assert "--margin 0.05" in (again / "summary.md").read_text()  # the Reproduce line reproduces it
    # the same analysis as the run's rebuilds the run's own files in place (a lost report.html)
    (run / "report.html").unlink()
    assert equiv_cli("report", str(run)).exit_code == 0
    assert (run / "report.html").exists() and (run / "verdict.json").read_bytes() == before["verdict.json"]


def test_compare_again_with_another_margin_keeps_the_first_verdict_and_buys_nothing(
    equiv_cli, tmp_path: Path, server: LoopbackServer
) -> None:
    traffic = write_jsonl(tmp_path / "traffic.jsonl", make_records(["triage"], 40))
    config = write_config(tmp_path / "equiv.toml", server, baseline="skill-95", candidate="skill-99-v2")
    out = tmp_path / "reports"
    _compare(equiv_cli, traffic, config, out)
    first_dir = only_run_dir(out)
    before = (first_dir / "verdict.json").read_bytes()
    bought = len(server.requests)
    _compare(equiv_cli, traffic, config, out, "--margin", "0.05")
    assert (first_dir / "verdict.json").read_bytes() == before
    assert len(server.requests) == bought
    (other,) = [p for p in out.iterdir() if p.is_dir() and p != first_dir]
    assert load_verdict(other)["margin"] == 0.05
