"""Per-type instruments: the judge calls agreement checks save, and what evaluating the checks costs.

    python benchmarks/bench_instruments.py [--triage 2000] [--extraction 500] [--agree 0.9] [--pairs 10000]

(a) Two synthetic prompt-types go through a full `compare` (equiv.api.compare, the in-package `fake/`
    litellm provider, no network, no keys), each twice: with its checks and with none (every pair that
    is not identical goes to the judge).
      ticket-triage       classification, `checks = ["label"]`
      invoice-extraction  JSON answers, `checks = ["json", {kind = "json_schema", ...}, {kind = "fields",
                          tolerance = 0.01}]`
    The baseline's answers are logged in the traffic. The candidate names the baseline's label (gives the
    baseline's field values) on a share `--agree` of the prompts; on the rest it names another label
    (gets one field wrong). A share `--same-format` (default half) of its answers is written in the
    baseline's own form, so the agreeing ones among them are identical and never judged; the rest differ
    in form ("billing." for "Billing", pretty-printed or fenced JSON, a total rounded within the
    tolerance, 2% of JSON answers wrapped in prose, which fails the json gates).
    The fake generators only write "Answer: <facts>.", so this script scripts the candidate's text for
    its own prompts (it replaces `equiv.llm.fake.generate` in this process); the calls, tokens, prices,
    the cache, the judge (fake/judge: prefers the answer naming more of the prompt's words) and the
    judge check are equiv's own. Judge calls are counted from the run's "call" events, split into calls
    on pairs and calls of the judge check (the check has more kinds on a type with checks).
(b) CPU time of `equiv.instruments.evaluate` (the pure per-pair evaluation) per check kind, over
    `--pairs` pairs each (a mix of agreeing, disagreeing and failing answers), best of 3.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import TypeAdapter

import equiv.api
from equiv.instruments import Answer, evaluate
from equiv.instruments.spec import CheckSpec
from equiv.llm import fake

BASELINE, CANDIDATE, JUDGE = "fake/skill-99", "fake/skill-50", "fake/judge"
TRIAGE, EXTRACTION = "ticket-triage", "invoice-extraction"

# ---------------------------------------------------------------------------------------------- traffic

LABELS = ("billing", "login", "outage", "shipping", "refund", "security")
# each ticket mentions its true category, so fake/judge (which counts the prompt's words an answer names)
# prefers the right label; the label set itself is not listed in the prompt
TICKETS = {
    "billing": "My billing statement shows a duplicate charge of {amount} for order {n}.",
    "login": "I cannot login to my account {n} since the password reset this morning.",
    "outage": "The dashboard in region {n} is down for everybody, this looks like an outage.",
    "shipping": "Package {n} has a shipping status that has not moved for {days} days.",
    "refund": "Please send a refund for order {n}, the kettle arrived broken.",
    "security": "Someone changed the email on account {n}, I think it is a security problem.",
}
TRIAGE_SYSTEM = "You triage support tickets. Reply with the ticket's category and nothing else."

VENDORS = ("Globex", "Initech", "Umbrella", "Hooli", "Soylent", "Wonka", "Tyrell", "Cyberdyne")
CURRENCIES = ("EUR", "USD", "GBP")
EXTRACTION_SYSTEM = "Extract vendor, invoice_no, date, total and currency from the invoice; reply with the object only."
INVOICE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["vendor", "invoice_no", "date", "total", "currency"],
    "properties": {
        "vendor": {"type": "string", "minLength": 1},
        "invoice_no": {"type": "string", "pattern": "^INV-[0-9]+$"},
        "date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": list(CURRENCIES)},
    },
    "additionalProperties": False,
}

# candidate answers by the text of the prompt's user message (read by the scripted generator)
SCRIPT: dict[str, str] = {}


def _label_style(label: str, rng: random.Random) -> str:
    """The same label as another model might write it (`label` still agrees)."""
    return rng.choice((f"{label}.", label.upper(), f"**{label}**", f" {label}\n", f"{label.capitalize()}."))


def triage_records(n: int, agree: float, same_format: float, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        gold = LABELS[i % len(LABELS)]
        text = TICKETS[gold].format(n=10_000 + i, amount=f"${rng.randint(5, 500)}.00", days=rng.randint(3, 20))
        base_label = gold if rng.random() < 0.95 else rng.choice([x for x in LABELS if x != gold])
        baseline = base_label.capitalize()
        if rng.random() < agree:
            candidate = baseline if rng.random() < same_format else _label_style(base_label, rng)
        else:  # another label: the right one where the baseline was wrong, else a wrong one
            other = gold if base_label != gold else rng.choice([x for x in LABELS if x != gold])
            candidate = other.capitalize() if rng.random() < same_format else _label_style(other, rng)
        SCRIPT[text] = candidate
        out.append(_record(f"t{i}", TRIAGE, TRIAGE_SYSTEM, text, baseline))
    return out


def _invoice_text(fields: dict[str, Any], style: str) -> str:
    if style == "compact":
        return json.dumps(fields)
    if style == "pretty":
        return json.dumps(fields, indent=2)
    if style == "fenced":
        return "```json\n" + json.dumps(fields, indent=2) + "\n```"
    return "Here is the extracted data: " + json.dumps(fields)  # prose around it: not JSON


def extraction_records(n: int, agree: float, same_format: float, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        fields = {
            "vendor": rng.choice(VENDORS),
            "invoice_no": f"INV-{20_000 + i}",
            "date": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "total": round(rng.uniform(20, 5000), 2),
            "currency": rng.choice(CURRENCIES),
        }
        text = (
            f"Invoice {fields['invoice_no']} from {fields['vendor']} Limited, issued {fields['date']}. "
            f"Amount due: {fields['total']:.2f} {fields['currency']}, payable within thirty days."
        )
        baseline = json.dumps(fields)
        cand = dict(fields)
        if rng.random() >= agree:  # one field wrong
            wrong = rng.choice(("vendor", "total", "date"))
            if wrong == "vendor":
                cand["vendor"] = rng.choice([v for v in VENDORS if v != fields["vendor"]])
            elif wrong == "total":
                cand["total"] = round(fields["total"] * 1.1, 2)
            else:
                cand["date"] = f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if cand == fields and rng.random() < same_format:
            candidate = baseline
        else:
            if rng.random() < 0.3:
                cand["total"] = round(cand["total"] * (1 + rng.uniform(-0.004, 0.004)), 2)  # within tolerance
            candidate = _invoice_text(cand, rng.choice(("compact", "pretty", "fenced", "pretty", "compact")))
            if rng.random() < 0.02:
                candidate = _invoice_text(cand, "prose")
        SCRIPT[text] = candidate
        out.append(_record(f"x{i}", EXTRACTION, EXTRACTION_SYSTEM, text, baseline))
    return out


def _record(rid: str, prompt_type: str, system: str, user: str, response: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    prompt_tokens = sum(fake.count_tokens(m["content"]) + 3 for m in messages)
    return {
        "id": rid,
        "prompt_type": prompt_type,
        "messages": messages,
        "response": response,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": fake.count_tokens(response)},
    }


_ORIGINAL_GENERATE = fake.generate


def scripted_generate(model: str, messages: list[dict[str, Any]], sample: int = 0) -> str:
    """The candidate's scripted answer for this script's prompts; the fake world's answer otherwise."""
    user = next((fake.content_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    if model.split("/", 1)[-1] == CANDIDATE.split("/", 1)[-1] and user in SCRIPT:
        return SCRIPT[user]
    return _ORIGINAL_GENERATE(model, messages, sample)


# ---------------------------------------------------------------------------------------------- (a) runs

CHECKS_TOML = {
    TRIAGE: 'checks = ["label"]',
    EXTRACTION: (
        'checks = ["json", {kind = "json_schema", schema = "schemas/invoice.json"}, '
        '{kind = "fields", tolerance = 0.01}]'
    ),
}


def write_config(folder: Path, prompt_type: str, n: int, with_checks: bool) -> Path:
    lines = [
        f'baseline = "{BASELINE}"',
        f'candidate = "{CANDIDATE}"',
        f'judge = "{JUDGE}"',
        f"per_type = {n}",
        "max_spend_usd = 100",
        "bootstrap = 2000",
    ]
    if with_checks:
        lines += [f'[types."{prompt_type}"]', CHECKS_TOML[prompt_type]]
    path = folder / ("equiv-checks.toml" if with_checks else "equiv-plain.toml")
    path.write_text("\n".join(lines) + "\n")
    return path


def one_run(folder: Path, traffic: Path, prompt_type: str, n: int, with_checks: bool) -> dict[str, Any]:
    config = write_config(folder, prompt_type, n, with_checks)
    calls = {"judge": 0, "judge_usd": 0.0, "candidate": 0, "other": 0}

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind != "call":
            return
        if data.get("model") == JUDGE:
            calls["judge"] += 1
            calls["judge_usd"] += float(data.get("cost") or 0.0)
        elif data.get("model") == CANDIDATE:
            calls["candidate"] += 1
        else:
            calls["other"] += 1

    out = folder / f"out-{prompt_type}-{'checks' if with_checks else 'plain'}"  # own cache per run
    cpu0, t0 = time.process_time(), time.perf_counter()
    res = equiv.api.compare(traffic, config=config, out=out, fresh=True, on_event=on_event)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    run = equiv.api.load_run(res.run_dir)
    pairs = [p for p in run.pairs if p.prompt_type == prompt_type]
    tv = next(t for t in res.verdict.prompt_types if t.prompt_type == prompt_type)
    on_pairs = sum(len(p.judgments) + len(p.judge_failures) for p in pairs)
    on_checks = sum(len(c.judgments) + len(c.judge_failures) for c in run.checks)
    return {
        "pairs": len(pairs),
        "identical": sum(p.decided_by == "identical" for p in pairs),
        "agreement": sum(p.decided_by == "agreement" for p in pairs),
        "judged": sum(p.decided_by is None and p.error is None for p in pairs),
        "judge_calls": calls["judge"],
        "judge_on_pairs": on_pairs,
        "judge_on_checks": on_checks,
        "n_checks": len(run.checks),
        "check_kinds": dict(sorted(Counter(c.kind for c in run.checks).items())),
        "judge_usd": calls["judge_usd"],
        "eval_usd": res.verdict.eval_cost_usd or 0.0,
        "candidate_calls": calls["candidate"],
        "other_calls": calls["other"],
        "wall_s": wall,
        "cpu_s": cpu,
        "verdict": tv.verdict,
        "diff": tv.quality_diff,
        "n_judged": tv.n_judged,
        "checks": tv.checks or [],
        "aborted": res.aborted,
    }


def part_a(tmp: Path, n_triage: int, n_extraction: int, agree: float, same_format: float) -> None:
    rng = random.Random(7)
    (tmp / "schemas").mkdir()
    (tmp / "schemas" / "invoice.json").write_text(json.dumps(INVOICE_SCHEMA, indent=2))
    sets = {
        TRIAGE: triage_records(n_triage, agree, same_format, rng),
        EXTRACTION: extraction_records(n_extraction, agree, same_format, rng),
    }
    fake.generate = scripted_generate  # type: ignore[assignment]
    try:
        # warm-up: imports, litellm's provider setup, numpy/scipy (not timed)
        warm = tmp / "warm"
        warm.mkdir()
        _write_jsonl(warm / "traffic.jsonl", sets[TRIAGE][:40])
        one_run(warm, warm / "traffic.jsonl", TRIAGE, 40, True)

        results: dict[tuple[str, bool], dict[str, Any]] = {}
        for prompt_type, records in sets.items():
            traffic = tmp / f"{prompt_type}.jsonl"
            _write_jsonl(traffic, records)
            for with_checks in (False, True):
                results[prompt_type, with_checks] = one_run(tmp, traffic, prompt_type, len(records), with_checks)
    finally:
        fake.generate = _ORIGINAL_GENERATE  # type: ignore[assignment]

    print(
        f"(a) judge calls bought with and without checks: equiv.api.compare on the fake/ provider, "
        f"candidate agrees on {agree:.0%} of prompts, {same_format:.0%} of those written identically"
    )
    head = (
        f"  {'prompt-type':19s} {'checks':6s} {'pairs':>5s} {'ident':>6s} {'agree':>6s} {'judged':>6s} "
        f"{'judge calls':>11s} {'(pairs+check)':>13s} {'judge $':>8s} {'eval $':>8s} {'wall s':>6s} "
        f"{'cpu s':>6s}  verdict"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    for (prompt_type, with_checks), r in results.items():
        n = max(1, r["pairs"])
        d = r["diff"]
        diff = f"{d.estimate:+.3f} [{d.ci_low:+.3f}, {d.ci_high:+.3f}]" if d is not None else "-"
        print(
            f"  {prompt_type:19s} {'yes' if with_checks else 'none':6s} {r['pairs']:5d} "
            f"{r['identical'] / n:6.1%} {r['agreement'] / n:6.1%} {r['judged'] / n:6.1%} "
            f"{r['judge_calls']:11d} {r['judge_on_pairs']:>6d}+{r['judge_on_checks']:<6d} "
            f"{r['judge_usd']:8.4f} {r['eval_usd']:8.4f} {r['wall_s']:6.1f} {r['cpu_s']:6.1f}  "
            f"{r['verdict']} {diff}" + (f" ABORTED: {r['aborted']}" if r["aborted"] else "")
        )
    print()
    for prompt_type in sets:
        plain, checked = results[prompt_type, False], results[prompt_type, True]
        saved = 1 - checked["judge_calls"] / max(1, plain["judge_calls"])
        saved_pairs = 1 - checked["judge_on_pairs"] / max(1, plain["judge_on_pairs"])
        saved_usd = 1 - checked["judge_usd"] / plain["judge_usd"] if plain["judge_usd"] else 0.0
        decided = (checked["identical"] + checked["agreement"]) / max(1, checked["pairs"])
        print(
            f"  {prompt_type}: checks decide {decided:.1%} of pairs without the judge "
            f"({checked['agreement'] / max(1, checked['pairs']):.1%} by agreement, the rest identical); "
            f"judge calls -{saved:.1%} (on pairs -{saved_pairs:.1%}), judge cost -{saved_usd:.1%}, "
            f"wall {plain['wall_s']:.1f} s -> {checked['wall_s']:.1f} s"
        )
        for c in checked["checks"]:
            if c.kind == "agreement":
                print(f"      {c.name:12s} agreement rate {c.agreement_rate:.3f} over {c.n} pairs")
            else:
                dd = c.diff
                print(
                    f"      {c.name:12s} gate: baseline {c.baseline_pass_rate:.3f}, candidate "
                    f"{c.candidate_pass_rate:.3f}, diff {dd.estimate:+.3f} [{dd.ci_low:+.3f}, {dd.ci_high:+.3f}]"
                    if dd is not None
                    else f"      {c.name:12s} gate"
                )
        kinds = ", ".join(f"{k} {v}" for k, v in checked["check_kinds"].items())
        print(
            f"      judge check: {plain['n_checks']} checks ({plain['judge_on_checks']} judge calls) without "
            f"checks; {checked['n_checks']} ({checked['judge_on_checks']} calls) with them: {kinds}"
        )
        for r in (plain, checked):
            if r["n_judged"] is not None and r["n_judged"] != r["judged"]:
                print(f"      note: verdict.json n_judged {r['n_judged']} != {r['judged']} pairs without decided_by")
            if r["other_calls"]:
                print(f"      note: {r['other_calls']} calls to models other than candidate and judge")


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


# ---------------------------------------------------------------------------------------------- (b) CPU

_ADAPTER: TypeAdapter[Any] = TypeAdapter(CheckSpec)


def check(kind: str, **settings: Any) -> Any:
    """A check as the config loader builds it (a json_schema's schema already read into a dict)."""
    return _ADAPTER.validate_python({"kind": kind, **settings})


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "create_ticket",
            "parameters": {
                "type": "object",
                "required": ["category", "priority", "summary"],
                "properties": {
                    "category": {"enum": list(LABELS)},
                    "priority": {"type": "integer", "minimum": 1, "maximum": 4},
                    "summary": {"type": "string", "maxLength": 200},
                },
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "escalate", "parameters": {"type": "object", "properties": {"team": {"type": "string"}}}},
    },
]

Pairs = list[tuple[Answer, Answer]]


def label_pairs(n: int, rng: random.Random) -> Pairs:
    out = []
    for _ in range(n):
        a = rng.choice(LABELS)
        b = a if rng.random() < 0.9 else rng.choice(LABELS)
        out.append((Answer(a.capitalize()), Answer(_label_style(b, rng))))
    return out


def text_pairs(n: int, rng: random.Random) -> Pairs:
    words = "the order was charged twice please refund the duplicate payment to the original card soon".split()
    out = []
    for _ in range(n):
        a = " ".join(rng.choices(words, k=40))
        b = a if rng.random() < 0.5 else (a + " " if rng.random() < 0.5 else " ".join(rng.choices(words, k=40)))
        out.append((Answer(a), Answer(b)))
    return out


def invoice_pairs(n: int, rng: random.Random) -> Pairs:
    out = []
    for i in range(n):
        fields = {
            "vendor": rng.choice(VENDORS),
            "invoice_no": f"INV-{i}",
            "date": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "total": round(rng.uniform(20, 5000), 2),
            "currency": rng.choice(CURRENCIES),
        }
        cand = dict(fields)
        if rng.random() < 0.1:
            cand["total"] = round(fields["total"] * 1.1, 2)
        elif rng.random() < 0.3:
            cand["total"] = round(fields["total"] * 1.004, 2)
        style = rng.choice(
            ("compact", "pretty", "fenced", "compact", "pretty", "prose" if rng.random() < 0.1 else "compact")
        )
        out.append((Answer(json.dumps(fields)), Answer(_invoice_text(cand, style))))
    return out


def tool_pairs(n: int, rng: random.Random) -> tuple[Pairs, list[dict[str, Any]]]:
    def call(i: int, args: dict[str, Any], name: str = "create_ticket") -> dict[str, Any]:
        fn = {"name": name, "arguments": json.dumps(args)}
        return {"id": f"call_{i}", "type": "function", "function": fn}

    out = []
    for i in range(n):
        args = {"category": rng.choice(LABELS), "priority": rng.randint(1, 4), "summary": "Duplicate charge on order"}
        cand = dict(args)
        r = rng.random()
        if r < 0.05:
            cand["priority"] = 7  # out of range: fails the schema
        elif r < 0.08:
            cand.pop("summary")
        b = Answer("", (call(i, args),))
        c = Answer("", (call(i + n, cand, "create_ticket" if r < 0.98 else "delete_ticket"),))
        out.append((b, c))
    return out, TOOLS


def part_b(n: int, repeat: int = 3) -> None:
    rng = random.Random(11)
    labels, texts, invoices = label_pairs(n, rng), text_pairs(n, rng), invoice_pairs(n, rng)
    tools, tool_list = tool_pairs(n, rng)
    schema = check("json_schema", schema=INVOICE_SCHEMA)
    fields = check("fields", tolerance=0.01)
    cases: list[tuple[str, list[Any], Pairs, list[dict[str, Any]] | None]] = [
        ("none (identity test only)", [], texts, None),
        ("label", [check("label")], labels, None),
        ("exact", [check("exact")], texts, None),
        ("json", [check("json")], invoices, None),
        ("json_schema", [schema], invoices, None),
        ("fields (tolerance 0.01)", [fields], invoices, None),
        ("tool_call", [check("tool_call")], tools, tool_list),
        ("json + json_schema + fields", [check("json"), schema, fields], invoices, None),
    ]
    print(f"(b) CPU time of equiv.instruments.evaluate per pair ({n:,} pairs per row, best of {repeat})")
    head = f"  {'checks':30s} {'us/pair':>8s} {'pairs/s':>10s} {'no judge':>9s}"
    print(head)
    print("  " + "-" * (len(head) - 2))
    for name, checks, pairs, tool_spec in cases:
        _evaluate_all(checks, pairs[:200], tool_spec)  # warm caches (compiled schemas, regexes)
        best, decided = _time(lambda c=checks, p=pairs, t=tool_spec: _evaluate_all(c, p, t), repeat)
        print(f"  {name:30s} {best / len(pairs) * 1e6:8.1f} {len(pairs) / best:10,.0f} {decided / len(pairs):9.1%}")


def _evaluate_all(checks: list[Any], pairs: Pairs, tools: list[dict[str, Any]] | None) -> int:
    return sum(evaluate(checks, b, c, tools).agreed for b, c in pairs)


def _time(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(repeat):
        t0 = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t0)
    return best, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--triage", type=int, default=2000, help="ticket-triage records")
    p.add_argument("--extraction", type=int, default=500, help="invoice-extraction records")
    p.add_argument("--agree", type=float, default=0.9, help="share of prompts where the candidate agrees")
    p.add_argument("--same-format", type=float, default=0.5, help="share of agreeing answers written identically")
    p.add_argument("--pairs", type=int, default=10_000, help="pairs per row in (b)")
    args = p.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        part_a(Path(tmp), args.triage, args.extraction, args.agree, args.same_format)
    print()
    part_b(args.pairs)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
