"""`equiv label`: a blind labelling page (label.html) for people, and the sample it shows.

SPEC "Judges — contract", calibration against people: a stratified sample of a run's pairs is shown
blind (no model names, random sides, keys 1 / 2 / 0) and the page saves `labels.jsonl`, whose lines
are `pairs.jsonl` lines plus `"gold"`, `"labelled_at"` and `"labeller"`, for `equiv calibrate`.

Everything here is pure except `write_label_page`. All model and traffic text is untrusted: it reaches
the page only as JSON inside a `<script type="application/json">` block with `<`, `>` and `&` escaped
(so `</script>` in an answer cannot end the block), and the page's script draws it with textContent.
The page's Content-Security-Policy allows no network and only its own script and style, by hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from markupsafe import Markup

from equiv.errors import InputError
from equiv.report.html import _env, _message_text
from equiv.schema import Pair
from equiv.store import PAIRS, RunDir, write_text_atomic

TEMPLATES = Path(__file__).parent / "report" / "templates"
LABEL_PAGE = "label.html"
LABELS = "labels.jsonl"
DEFAULT_N = 60
MIN_PER_TYPE = 3  # a type with few pairs still gets this many (or all it has), when --n leaves room

Side = Literal["baseline", "candidate"]


@dataclass(frozen=True)
class Item:
    """One pair to label and which answer the page shows first (as "Answer 1")."""

    pair: Pair
    left: Side


@dataclass(frozen=True)
class Skipped:
    """Why pairs of a run are not labelable (for the CLI's message)."""

    failed: int = 0  # `error` set
    missing: int = 0  # an answer is absent
    identical: int = 0  # both answers the same after strip: nothing to label
    duplicate: int = 0  # a pair_id seen before (the last line wins)


# ---------------------------------------------------------------------------------------------
# sampling


def _answers(pair: Pair) -> tuple[str, str] | None:
    if pair.baseline is None or pair.candidate is None:
        return None
    if pair.baseline.output is None or pair.candidate.output is None:
        return None
    return pair.baseline.output, pair.candidate.output


def labelable(pairs: Sequence[Pair]) -> tuple[list[Pair], Skipped]:
    """Pairs a person can label: no error, both answers present, the answers differ (after strip).

    A pair_id that occurs twice is taken once (its last line: the newest state of a resumed run).
    """
    latest: dict[str, Pair] = {}
    for p in pairs:
        latest[p.pair_id] = p
    failed = missing = identical = 0
    out: list[Pair] = []
    for p in latest.values():
        answers = _answers(p)
        if p.error is not None:
            failed += 1
        elif answers is None:
            missing += 1
        elif answers[0].strip() == answers[1].strip():
            identical += 1
        else:
            out.append(p)
    return out, Skipped(failed, missing, identical, len(pairs) - len(latest))


def _rng(seed: int, *parts: str) -> random.Random:
    """A generator seeded from the seed and names by SHA-256: the same on every machine and Python."""
    digest = hashlib.sha256("\0".join(["equiv-label", str(seed), *parts]).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def allocate(counts: Mapping[str, int], n: int) -> dict[str, int]:
    """How many pairs of each type to sample: `n` in all (every pair if there are fewer), proportional
    to the types' sizes, and at least MIN_PER_TYPE of each type (or all it has) when `n` leaves room."""
    total = sum(counts.values())
    if total <= n:
        return dict(counts)
    names = sorted(counts)
    floor = min(MIN_PER_TYPE, n // max(1, len(names)))
    alloc = {t: min(counts[t], floor) for t in names}
    target = {t: n * counts[t] / total for t in names}
    while sum(alloc.values()) < n:
        # the type furthest below its proportional share (ties: the larger type, then the first by name)
        best: str | None = None
        best_key = (0.0, 0)
        for t in names:
            key = (target[t] - alloc[t], counts[t])
            if alloc[t] < counts[t] and (best is None or key > best_key):
                best, best_key = t, key
        assert best is not None  # total > n: some type has pairs left
        alloc[best] += 1
    return alloc


def left_side(pair_id: str, seed: int) -> Side:
    """Which answer a pair shows as "Answer 1": a coin flip per pair_id, seeded, by SHA-256."""
    digest = hashlib.sha256(f"equiv-label\0side\0{seed}\0{pair_id}".encode()).digest()
    return "baseline" if digest[0] & 1 == 0 else "candidate"


def sample(pairs: Sequence[Pair], n: int = DEFAULT_N, seed: int = 0) -> list[Item]:
    """The stratified, seeded sample to label, in the (shuffled) order the page shows it.

    Reproducible: the same pairs (in any order), `n` and `seed` give the same items and sides.
    """
    if n < 1:
        raise InputError(f"--n must be at least 1 (got {n})")
    pool, _ = labelable(pairs)
    by_type: dict[str, list[Pair]] = {}
    for p in sorted(pool, key=lambda p: p.pair_id):
        by_type.setdefault(p.prompt_type, []).append(p)
    alloc = allocate({t: len(v) for t, v in by_type.items()}, n)
    chosen: list[Pair] = []
    for t in sorted(by_type):
        chosen += _rng(seed, "type", t).sample(by_type[t], alloc[t])
    chosen.sort(key=lambda p: p.pair_id)
    _rng(seed, "order").shuffle(chosen)
    return [Item(p, left_side(p.pair_id, seed)) for p in chosen]


# ---------------------------------------------------------------------------------------------
# the page


def _item_data(item: Item) -> dict[str, Any]:
    answers = _answers(item.pair)
    assert answers is not None  # sample() keeps only pairs with both answers
    baseline, candidate = answers
    shown = [baseline, candidate] if item.left == "baseline" else [candidate, baseline]
    p = item.pair
    data: dict[str, Any] = {
        "pair_id": p.pair_id,
        "prompt_type": p.prompt_type,
        # what the page shows of the conversation, and the messages as they were (for labels.jsonl)
        "view": [{"role": str(m.get("role", "")), "text": _message_text(m)} for m in p.messages],
        "messages": p.messages,
        "left": item.left,
        "answers": shown,
    }
    if p.prompt_id is not None:
        data["prompt_id"] = p.prompt_id
    return data


def page_data(run_id: str, items: Sequence[Item], seed: int = 0) -> dict[str, Any]:
    """What the page's script reads. No model names: the run's verdict.json has them."""
    return {
        "schema_version": 1,
        "run_id": run_id,
        "seed": seed,
        "storage_key": f"equiv-label:v1:{run_id}",
        "items": [_item_data(i) for i in items],
    }


def json_for_script(data: Any) -> str:
    """JSON safe inside `<script type="application/json">`: no `<`, `>` or `&` left to close or open a tag."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for raw, esc in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, esc)
    return text


@cache
def _asset(name: str) -> str:
    # the page's own script and style (template files, never data); allowed by hash in the CSP
    return (TEMPLATES / name).read_text(encoding="utf-8").strip()


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def csp() -> str:
    return (
        "default-src 'none'; "
        f"script-src {_sha256(_asset('label.js'))}; style-src {_sha256(_asset('label.css'))}; "
        "img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def render_page(run_id: str, items: Sequence[Item], seed: int = 0) -> str:
    """label.html as one string: self-contained, offline, blind."""
    return (
        _env()
        .get_template("label.html.j2")
        .render(
            csp=csp(),
            style=Markup(_asset("label.css")),
            script=Markup(_asset("label.js")),
            data=Markup(json_for_script(page_data(run_id, items, seed))),
            n=len(items),
        )
    )


@dataclass(frozen=True)
class LabelPage:
    path: Path
    items: list[Item]
    n_labelable: int
    skipped: Skipped


def run_id_of(run: RunDir) -> str:
    info_id = run.read_run_info().get("run_id")
    return info_id if isinstance(info_id, str) and info_id else run.path.resolve().name


def write_label_page(run_dir: Path, *, n: int = DEFAULT_N, seed: int = 0, out: Path | None = None) -> LabelPage:
    """Sample the run's pairs and write the labelling page (RUN_DIR/label.html unless `out`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a run directory")
    run = RunDir(run_dir)
    if not run.file(PAIRS).is_file():
        raise InputError(f"{run_dir}: no {PAIRS} here; give the run directory `equiv compare` wrote")
    pairs = run.load_pairs()
    pool, skipped = labelable(pairs)
    if not pool:
        raise InputError(
            f"{run.file(PAIRS)}: no pair to label among {len(pairs)} "
            f"({skipped.failed} failed, {skipped.missing} missing an answer, "
            f"{skipped.identical} with identical answers)"
        )
    items = sample(pool, n, seed)
    path = Path(out) if out is not None else run.file(LABEL_PAGE)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, render_page(run_id_of(run), items, seed))
    return LabelPage(path, items, len(pool), skipped)
