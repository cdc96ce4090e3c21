"""Stratified, seeded, streaming sampling of traffic records, per prompt-type.  [pure]

One reservoir (Algorithm R) per prompt-type keeps at most ``per_type`` records, so memory is
O(per_type x number of types) whatever the size of the traffic. Each type draws from its own RNG,
seeded from ``seed`` and the type's name through sha256 (never Python's ``hash()``, which changes
between processes): a type's sample depends only on its own records, so adding traffic of another
type never changes it. Kept records are returned in the order they appeared in the input.

Ids are made unique within the sample (the reader does not do it: that would need memory
proportional to the file): where two sampled records share an id, the later one gets ``"<id>#2"``,
then ``"#3"`` ..., skipping any suffix that another sampled record already uses as its own id.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from equiv.schema import TrafficRecord

__all__ = ["DAYS_PER_MONTH", "NO_RESPONSE", "Sample", "stratified_sample", "type_rng"]

DAYS_PER_MONTH = 30.44
NO_RESPONSE = "no logged response"
_MIN_SPAN_S = 3600.0  # below an hour of traffic, a monthly rate is a guess, not a projection


@dataclass
class Sample:
    """The sampled records per prompt-type, with what is needed to project volume and explain skips.

    ``volume`` counts every record of the type that passed the ``types`` filter, including those
    skipped for lack of a logged response: it measures the type's traffic, which is what the monthly
    projection needs. ``first_ts``/``last_ts`` span the timestamps of those same records.
    """

    records: dict[str, list[TrafficRecord]] = field(default_factory=dict)
    volume: dict[str, int] = field(default_factory=dict)
    first_ts: dict[str, datetime | None] = field(default_factory=dict)
    last_ts: dict[str, datetime | None] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    missing_types: list[str] = field(default_factory=list)  # asked for with ``types`` but never seen
    per_type: int = 0
    seed: int = 0

    def monthly_volume(self) -> dict[str, float | None]:
        """Requests per month per type: count / span_days x 30.44, None where the span is under an hour."""
        out: dict[str, float | None] = {}
        for t, n in self.volume.items():
            first, last = self.first_ts.get(t), self.last_ts.get(t)
            span = (last - first).total_seconds() if first is not None and last is not None else 0.0
            out[t] = n / (span / 86400.0) * DAYS_PER_MONTH if span >= _MIN_SPAN_S else None
        return out

    @property
    def n_records(self) -> int:
        return sum(len(r) for r in self.records.values())


class _Reservoir:
    """Algorithm R for one prompt-type: each of the ``seen`` records is kept with probability k/seen."""

    __slots__ = ("rng", "seen", "kept", "first", "last")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen = 0
        self.kept: list[tuple[int, TrafficRecord]] = []
        self.first: datetime | None = None
        self.last: datetime | None = None

    def offer(self, position: int, record: TrafficRecord, k: int) -> None:
        self.seen += 1
        if len(self.kept) < k:
            self.kept.append((position, record))
            return
        j = self.rng.randrange(self.seen)
        if j < k:
            self.kept[j] = (position, record)


def type_rng(seed: int, prompt_type: str) -> random.Random:
    """The RNG of one prompt-type: stable across processes, machines and Python versions."""
    digest = hashlib.sha256(f"{seed}\x00{prompt_type}".encode("utf-8", "surrogatepass")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def stratified_sample(
    records: Iterable[TrafficRecord],
    *,
    per_type: int,
    seed: int,
    types: Sequence[str] | None = None,
    require_response: bool = False,
) -> Sample:
    """Up to ``per_type`` records per prompt-type, uniformly at random, in one pass over ``records``.

    ``types`` restricts the sample to those prompt-types (names never seen are listed in
    ``missing_types``). With ``require_response`` (logged-baseline mode) a record without a logged
    response cannot be compared: it is skipped and counted as ``skipped["no logged response"]``.
    """
    if per_type < 1:
        raise ValueError(f"per_type must be at least 1, got {per_type}")
    wanted = list(dict.fromkeys(types)) if types is not None else None
    if wanted is not None and not wanted:
        raise ValueError("types must name at least one prompt-type (or be None for all)")
    allowed = set(wanted) if wanted is not None else None
    reservoirs: dict[str, _Reservoir] = {}
    volume: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for position, record in enumerate(records):
        t = record.prompt_type
        if allowed is not None and t not in allowed:
            continue
        res = reservoirs.get(t)
        if res is None:
            res = reservoirs[t] = _Reservoir(type_rng(seed, t))
        volume[t] += 1
        ts = record.timestamp
        if ts is not None:
            if res.first is None or ts < res.first:
                res.first = ts
            if res.last is None or ts > res.last:
                res.last = ts
        if require_response and record.response is None:
            skipped[NO_RESPONSE] += 1
            continue
        res.offer(position, record, per_type)

    order = [t for t in wanted if t in reservoirs] if wanted is not None else sorted(reservoirs)
    kept = {t: sorted(reservoirs[t].kept, key=lambda pr: pr[0]) for t in order}
    renamed = _unique_ids(kept)
    return Sample(
        records={t: [renamed.get(pos, rec) for pos, rec in kept[t]] for t in order},
        volume={t: volume[t] for t in order},
        first_ts={t: reservoirs[t].first for t in order},
        last_ts={t: reservoirs[t].last for t in order},
        skipped=dict(skipped),
        missing_types=[t for t in wanted if t not in reservoirs] if wanted is not None else [],
        per_type=per_type,
        seed=seed,
    )


def _unique_ids(kept: dict[str, list[tuple[int, TrafficRecord]]]) -> dict[int, TrafficRecord]:
    """Copies, with a unique id, of the sampled records whose id an earlier sampled record already has.

    Pairs are keyed by record id downstream (pairs.jsonl, the call cache), so two records sharing an
    id would overwrite each other. Earlier records (by position in the input) keep their id.
    """
    in_order = sorted((pos, rec) for recs in kept.values() for pos, rec in recs)
    original = {rec.id for _, rec in in_order}
    used: set[str] = set()
    renamed: dict[int, TrafficRecord] = {}
    for pos, rec in in_order:
        new_id, n = rec.id, 1
        # a suffixed name that another sampled record has as its own id is not free either
        while new_id in used or (n > 1 and new_id in original):
            n += 1
            new_id = f"{rec.id}#{n}"
        used.add(new_id)
        if new_id != rec.id:
            renamed[pos] = rec.model_copy(update={"id": new_id})
    return renamed
