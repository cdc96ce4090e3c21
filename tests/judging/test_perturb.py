"""The judge check's sensitivity kinds: each copy differs from the answer, is deterministic, and degrades
the answer the way its kind says (or the kind does not apply: None)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from equiv.judging.pairwise import degrade
from equiv.judging.perturb import (
    ANSWER_KINDS,
    KINDS,
    PAD_MIN_CHARS,
    applicable_kinds,
    json_body,
    normalize_label,
    passes,
    perturb,
)

LABELS = ["billing", "login", "bug", "shipping", "feature_request", "account"]
INVOICE = (
    '```json\n{\n  "vendor": "Globex Logistics",\n  "invoice_number": "48040",\n  "date": "2025-10-07",\n'
    '  "currency": "EUR",\n  "total": 1448.80\n}\n```'
)
SUMMARY = (
    "The office will be closed on Friday due to an electrical inspection, and employees will need to take "
    "laptops home on Thursday and work remotely, with the building reopening on Monday at 8."
)
PROSE = "Paris is the capital of France. It has about 2.1 million inhabitants in the city proper. See you there."
ANSWERS = ["billing", "Billing.", INVOICE, SUMMARY, PROSE, "[1, 2, 3]", '{"a": "x, y"}', "We met Alice and Bob."]

texts = st.text(min_size=1, max_size=400)
prose = st.lists(
    st.from_regex(r"[A-Z][a-z]{1,8}( [a-z]{1,8}){0,8}( [0-9]{1,4})?( [A-Z][a-z]{2,6})?[.!?]", fullmatch=True),
    min_size=1,
    max_size=6,
).map(" ".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
json_answers = st.one_of(
    st.dictionaries(st.text(max_size=6), json_values, max_size=5), st.lists(json_values, max_size=5)
)


# --- every kind -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("answer", ANSWERS)
def test_each_copy_differs_and_is_deterministic(kind: str, answer: str) -> None:
    out = perturb(kind, answer, labels=LABELS, seed_key="pair-7")
    assert out is None or out != answer
    assert perturb(kind, answer, labels=LABELS, seed_key="pair-7") == out


@given(kind=st.sampled_from(KINDS), text=st.one_of(texts, prose), seed=st.text(max_size=8))
def test_any_answer_any_kind_differs_or_does_not_apply(kind: str, text: str, seed: str) -> None:
    out = perturb(kind, text, labels=LABELS, seed_key=seed)
    assert out is None or out != text
    assert perturb(kind, text, labels=LABELS, seed_key=seed) == out


def test_deterministic_across_processes() -> None:
    # no Python hash(): another interpreter (another PYTHONHASHSEED) writes the same copies
    code = (
        "from equiv.judging.perturb import KINDS, perturb;"
        "print([perturb(k, 'Billing.', labels=['billing','login','bug'], seed_key='s') for k in KINDS]);"
        "print(perturb('number', 'We met Alice.', seed_key='s'))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_blank_answers_get_no_check(kind: str) -> None:
    assert perturb(kind, "", labels=LABELS) is None
    assert perturb(kind, "  \n ", labels=LABELS) is None


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown judge check kind"):
        perturb("shuffle", "text")
    with pytest.raises(ValueError, match="unknown judge check kind"):
        passes("shuffle", "A", "B")
    with pytest.raises(ValueError, match="unknown answer kind"):
        applicable_kinds("image")


def test_applicable_kinds_by_answer_kind() -> None:
    assert applicable_kinds("label") == ("truncate", "label")
    assert applicable_kinds("json") == ("truncate", "broken_json", "number")
    assert applicable_kinds("text") == ("truncate", "drop_sentence", "number", "pad")
    for kind in ANSWER_KINDS:
        assert applicable_kinds(kind)[0] == "truncate" and set(applicable_kinds(kind)) <= set(KINDS)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "pad"])
def test_passes_needs_the_intact_answer_in_both_orders(kind: str) -> None:
    assert passes(kind, "A", "B")
    for first, second in [("A", "A"), ("B", "B"), ("tie", "B"), ("A", "tie"), ("tie", "tie"), ("B", "A")]:
        assert not passes(kind, first, second)


def test_pad_passes_unless_the_padded_copy_wins_an_order() -> None:
    for first, second in [("A", "B"), ("tie", "tie"), ("A", "tie"), ("tie", "B")]:
        assert passes("pad", first, second)
    for first, second in [("B", "B"), ("A", "A"), ("B", "A"), ("B", "tie"), ("tie", "A")]:
        assert not passes("pad", first, second)


# --- truncate -------------------------------------------------------------------------------------------


@given(texts)
def test_truncate_is_specs_degrade(text: str) -> None:
    out = perturb("truncate", text)
    if text.strip():
        assert out == degrade(text) and text.startswith(out)
    else:
        assert out is None


# --- drop_sentence --------------------------------------------------------------------------------------


def test_drop_sentence_drops_the_longest() -> None:
    assert perturb("drop_sentence", PROSE) == "Paris is the capital of France. See you there."
    assert perturb("drop_sentence", "Short one. The last sentence is the longest of all.") == "Short one."
    assert perturb("drop_sentence", "- first item\n- the second item, longest\n- third") == "- first item\n- third"
    assert perturb("drop_sentence", "e.g. this is one sentence. it goes on") is None  # no capital: one sentence
    assert perturb("drop_sentence", SUMMARY) is None
    assert perturb("drop_sentence", "billing") is None


@given(prose)
def test_drop_sentence_keeps_the_other_sentences(text: str) -> None:
    sentences = re.split(r"(?<=[.!?]) (?=[A-Z])", text)
    out = perturb("drop_sentence", text)
    if len(sentences) < 2:
        assert out is None
        return
    longest = max(range(len(sentences)), key=lambda i: (len(sentences[i]), -i))
    assert out == " ".join(s for i, s in enumerate(sentences) if i != longest)


# --- number ---------------------------------------------------------------------------------------------


def test_number_changes_the_first_non_date_number_same_width() -> None:
    out = perturb("number", INVOICE)
    assert out == INVOICE.replace('"48040"', '"48041"')
    assert json.loads(out.strip("`\n").removeprefix("json")) != json.loads(INVOICE.strip("`\n").removeprefix("json"))
    assert perturb("number", "Total due: 1,448.80 EUR") == "Total due: 1,448.81 EUR"
    assert perturb("number", "It costs 19 dollars") == "It costs 18 dollars"
    assert (
        perturb("number", "On 2025-10-07 at 08:30 we paid 12 invoices") == "On 2025-10-07 at 08:30 we paid 13 invoices"
    )
    assert perturb("number", SUMMARY) == SUMMARY.replace("at 8.", "at 9.")


def test_number_falls_back_to_a_date_then_a_name() -> None:
    assert perturb("number", "Meet on 2025-10-07.") == "Meet on 2025-10-06."
    assert perturb("number", "Meet on 2025-10-01.") == "Meet on 2025-10-02."
    out = perturb("number", "We met Alice and Bob.", seed_key="k")
    assert out is not None and out.startswith("We met ") and out.endswith(" and Bob.") and "Alice" not in out
    # a capitalised word that starts a sentence is not an entity to swap
    assert perturb("number", "Hello there. Nothing here.") is None
    assert perturb("number", "no digits and no names") is None


@given(st.integers(min_value=0, max_value=10**9), st.text(alphabet="abc ", max_size=10))
def test_number_keeps_the_width(n: int, words: str) -> None:
    text = f"{words}total {n} units"
    out = perturb("number", text)
    assert out is not None and len(out) == len(text) and out != text


# --- label ----------------------------------------------------------------------------------------------


def test_label_gives_another_label_of_the_set() -> None:
    for answer in ("billing", "Billing.", "  BILLING!\n", "**Billing**", "`billing`"):
        out = perturb("label", answer, labels=LABELS, seed_key="pair-1")
        assert out in LABELS and out != "billing"
    picks = {perturb("label", "billing", labels=LABELS, seed_key=f"pair-{i}") for i in range(40)}
    assert len(picks) > 2  # the seed key spreads the choice over the set
    assert perturb("label", "refund", labels=LABELS) is None  # not a label of the set
    assert perturb("label", "billing", labels=None) is None
    assert perturb("label", "billing", labels=["billing", "Billing"]) is None  # no other label
    assert perturb("label", "The answer is billing", labels=LABELS) is None


@given(st.lists(st.from_regex(r"[a-z]{1,10}", fullmatch=True), min_size=2, max_size=8, unique=True), st.data())
def test_label_is_always_a_different_member(labels: list[str], data: st.DataObject) -> None:
    answer = data.draw(st.sampled_from(labels))
    seed = data.draw(st.text(max_size=6))
    out = perturb("label", answer.upper() + ".", labels=labels, seed_key=seed)
    assert out in labels and normalize_label(out) != normalize_label(answer)


# --- broken_json ----------------------------------------------------------------------------------------


def test_broken_json_no_longer_parses_and_keeps_the_fence() -> None:
    out = perturb("broken_json", INVOICE)
    assert out is not None and out.startswith("```json\n") and out.endswith("\n```")
    assert json_body(out) is None
    assert '"currency": "EUR"\n' in out  # the last comma went
    assert perturb("broken_json", '{"a": "x, y"}') == '{"a": "x, y"'  # a comma inside a string stays
    assert perturb("broken_json", "[1, 2, 3]") == "[1, 2 3"
    assert perturb("broken_json", "not json") is None
    assert perturb("broken_json", "42") is None  # a scalar has no brace to drop
    assert perturb("broken_json", '{"a": NaN}') is None  # not strict JSON: the json gate fails it already
    assert perturb("broken_json", '```JSON {"a": 1, "b": 2}```') == '```JSON {"a": 1 "b": 2```'
    assert perturb("broken_json", '```json\n{"a": 1}\n```\n```json\n{}\n```') is None  # two fences


@given(json_answers, st.sampled_from(["bare", "fence", "indent"]))
def test_broken_json_always_breaks(value: object, style: str) -> None:
    body = json.dumps(value, indent=2 if style != "bare" else None)
    text = f"```json\n{body}\n```" if style == "fence" else body
    assert json_body(text) is not None
    out = perturb("broken_json", text)
    assert out is not None and json_body(out) is None


# --- pad ------------------------------------------------------------------------------------------------


def test_pad_appends_filler_after_a_blank_line() -> None:
    out = perturb("pad", SUMMARY, seed_key="p")
    assert out is not None and out.startswith(SUMMARY + "\n\n")
    filler = out[len(SUMMARY) + 2 :]
    assert len(filler) >= len(SUMMARY) and "\n" not in filler
    assert not any(c.isdigit() for c in filler)  # content-free: no facts, no numbers
    short = perturb("pad", "billing")
    assert short is not None and len(short) - len("billing\n\n") >= PAD_MIN_CHARS


@given(texts, st.text(max_size=6))
def test_pad_keeps_the_intact_answer(text: str, seed: str) -> None:
    out = perturb("pad", text, seed_key=seed)
    if not text.strip():
        assert out is None
        return
    assert out is not None and out.startswith(text.rstrip() + "\n\n")
    assert len(out) - len(text.rstrip()) - 2 >= max(PAD_MIN_CHARS, len(text.strip()))
    assert len(out) - len(text.rstrip()) - 2 <= max(PAD_MIN_CHARS, len(text.strip())) + 120
