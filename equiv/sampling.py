"""Stratified, seeded, streaming sampling of traffic, per prompt-type, by distinct prompt.  [pure]

The unit of evidence is a distinct prompt (SPEC "Clusters"): records whose messages and replayed
params are identical (retries, FAQ traffic, templated prompts) form one **cluster**, whatever their
ids. Sampling selects clusters, not records: per prompt-type, the ``per_type`` clusters with the
smallest seeded hash ``h(seed, type, cluster)`` (bottom-k). That is a uniform sample of the type's
distinct prompts, and it is **nested**: a larger ``per_type`` keeps every cluster of a smaller one, so
following INCONCLUSIVE's advice ("about N prompts would be needed") buys only the new prompts.

Each selected cluster is bought and judged once and weighs as many records as it has in the traffic
(``Sample.weight``): the estimate stays traffic-weighted while the bootstrap resamples clusters.
The counts are exact in one pass with O(per_type) memory per type: a cluster's hash never changes
and the k-th smallest hash only falls as records stream by, so a cluster that leaves the bottom-k can
never come back, and every kept cluster has been counted since its first record.

A cluster is represented by its first record in the input (its id, logged response, usage and
timestamp). Kept records are returned in the order they first appeared. Hashes use sha256 (never
Python's salted ``hash()``), so a sample is the same on every machine and in every process, and a
type's sample depends only on its own records. The key's canonical JSON is written by orjson where its
bytes are ``json.dumps``'s (``_canonical_json``), else by ``json.dumps``: the key never depends on which.

Records straight from ``read_traffic`` are read through its ``_light`` items (issue 14): a row that the
reader's fast check vouches for comes as its prompt-type, timestamp, response, messages and params, and its
``TrafficRecord`` is built only if the sample keeps it (a few per type, not one per line). The sample, its
counts, clusters and ranks are those of the loop over the records (tests/traffic/test_fast_path.py).

Ids are made unique within the sample (the reader does not do it: that would need memory
proportional to the file): where two sampled records share an id, the later one gets ``"<id>#2"``,
then ``"#3"`` ..., skipping any suffix that another sampled record already uses as its own id.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from binascii import hexlify
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from equiv.schema import TrafficRecord

__all__ = [
    "DAYS_PER_MONTH",
    "NO_RESPONSE",
    "Sample",
    "cluster_id",
    "cluster_rank",
    "stratified_sample",
    "type_rng",
]

DAYS_PER_MONTH = 30.44
NO_RESPONSE = "no logged response"
_MIN_SPAN_S = 3600.0  # below an hour of traffic, a monthly rate is a guess, not a projection


_INT_MIN, _INT_MAX = -(2**63), 2**64  # the integers orjson writes (beyond them it raises)
_MAX_DEPTH = 64  # deeper values are left to json.dumps (orjson's own limit is lower than json's)
_MAX_STR = 1 << 20  # orjson reserves about 10 bytes per character of a string: longer ones go to json.dumps


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether orjson writes ``value`` exactly as ``json.dumps`` (sorted keys, ensure_ascii=False, no spaces)
    does: JSON's own types (no subclasses), str keys, 64-bit integers, and floats that both write in
    positional notation (orjson writes 9.999e-05 as 0.00009999; NaN and infinities as null). Strings over
    ``_MAX_STR`` characters are refused too, for the memory orjson would take."""
    t = type(value)
    if t is str:
        return len(value) <= _MAX_STR
    if t is bool or value is None:
        return True
    if t is int:
        return _INT_MIN <= value < _INT_MAX
    if t is float:
        return value == 0.0 or 1e-4 <= abs(value) < 1e16  # False for NaN and the infinities
    if depth >= _MAX_DEPTH:
        return False
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or len(k) > _MAX_STR:
                return False
            if type(v) is str:
                if len(v) > _MAX_STR:
                    return False
            elif not _plain(v, depth + 1):
                return False
        return True
    if t is list:
        for v in value:
            if type(v) is str:
                if len(v) > _MAX_STR:
                    return False
            elif not _plain(v, depth + 1):
                return False
        return True
    return False


def _canonical_json(value: Any, default: Any = None) -> bytes:
    """``json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=default)``,
    encoded as UTF-8 (surrogatepass), byte for byte; written by orjson where it gives the same bytes."""
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # a lone surrogate in a string: json.dumps writes it
            pass
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=default)
    return text.encode("utf-8", "surrogatepass")


def _cluster_digest(messages: list[dict[str, Any]], params: dict[str, Any]) -> bytes:
    """The sha256 that ``cluster_id`` shows the first 20 hex digits of."""
    return hashlib.sha256(_canonical_json({"m": messages, "p": params}, str)).digest()


def cluster_id(messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """The one cluster key: a hash of what the models are asked (messages and replayed params)."""
    return "c-" + _cluster_digest(messages, params)[:10].hex()


def _rank_prefix(seed: int, prompt_type: str) -> Any:
    """sha256 fed with what precedes the cluster in ``cluster_rank``'s hash (copied for each cluster)."""
    return hashlib.sha256(f"{seed}\x00{prompt_type}\x00".encode("utf-8", "surrogatepass"))


def cluster_rank(seed: int, prompt_type: str, cluster: str) -> int:
    """The seeded hash that orders a type's clusters: sampling keeps the smallest (bottom-k)."""
    digest = hashlib.sha256(f"{seed}\x00{prompt_type}\x00{cluster}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class Sample:
    """The sampled records per prompt-type, with what is needed to weigh them, project volume and explain skips.

    ``volume`` counts every record of the type that passed the ``types`` filter, including those
    skipped for lack of a logged response: it measures the type's traffic, which is what the monthly
    projection needs. ``first_ts``/``last_ts`` span the timestamps of those same records.
    ``cluster`` and ``weight`` map each sampled record's (final, unique) id to its cluster and to the
    number of records of that cluster in the traffic.
    ``clusters_seen`` counts the distinct prompts of each type, ``records_seen`` its records with a
    response where one is required.
    """

    records: dict[str, list[TrafficRecord]] = field(default_factory=dict)
    volume: dict[str, int] = field(default_factory=dict)
    first_ts: dict[str, datetime | None] = field(default_factory=dict)
    last_ts: dict[str, datetime | None] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    missing_types: list[str] = field(default_factory=list)  # asked for with ``types`` but never seen
    per_type: int = 0
    per_type_of: dict[str, int] = field(default_factory=dict)  # [types."name"] per_type overrides
    seed: int = 0
    cluster: dict[str, str] = field(default_factory=dict)
    weight: dict[str, int] = field(default_factory=dict)
    clusters_seen: dict[str, int] = field(default_factory=dict)
    records_seen: dict[str, int] = field(default_factory=dict)

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

    def notes(self) -> list[str]:
        """What the user must know about the sample: fewer prompts than asked, duplicates merged."""
        out = []
        for t, recs in self.records.items():
            n_clusters, n_records = self.clusters_seen.get(t, len(recs)), self.records_seen.get(t, len(recs))
            if n_records > n_clusters:
                out.append(
                    f"{t}: {n_records} records are {n_clusters} distinct prompts (identical messages and "
                    f"params count once, weighted by how often they occur)"
                )
            wanted = self.per_type_of.get(t, self.per_type)
            if 0 < len(recs) < wanted:
                out.append(
                    f"{t}: only {len(recs)} distinct prompts in the traffic, fewer than per_type = "
                    f"{wanted}: all of them are used"
                )
        return out


class _BottomK:
    """The k clusters of one prompt-type with the smallest rank, each with its first record and count."""

    __slots__ = ("seed", "type", "heap", "kept", "seen", "records", "first", "last", "_rank")

    def __init__(self, seed: int, prompt_type: str) -> None:
        self.seed = seed
        self.type = prompt_type
        # clusters by the first 10 bytes of their digest (``head``: their id is "c-" + its hex); the id's
        # order is the heads' order, so ties of rank break as they would on the ids
        self.heap: list[tuple[int, bytes]] = []  # (-rank, head): the largest kept rank on top
        self.kept: dict[bytes, list[Any]] = {}  # head -> [position, record, count]
        # distinct clusters, each as the 80 bits its id shows (an int: half the memory of the id's text, and
        # the same count); dropped when it would grow too large
        self.seen: set[int] | None = set()
        self.records = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self._rank = _rank_prefix(seed, prompt_type)
        self._rank.update(b"c-")

    def offer(self, position: int, record: TrafficRecord, k: int) -> None:
        self.offer_head(position, record, _cluster_digest(record.messages, record.params)[:10], k)

    def offer_head(self, position: int, record: Any, head: bytes, k: int) -> None:
        """``offer`` of a record whose cluster digest begins with ``head`` (10 bytes)."""
        self.records += 1
        if self.seen is not None:
            self.seen.add(int.from_bytes(head, "big"))
            if len(self.seen) > 1_000_000:  # the count is a note, not worth unbounded memory
                self.seen = None
        entry = self.kept.get(head)
        if entry is not None:
            entry[2] += 1
            return
        h = self._rank.copy()  # cluster_rank(self.seed, self.type, "c-" + head.hex())
        h.update(hexlify(head))
        r = int.from_bytes(h.digest()[:8], "big")
        if len(self.heap) < k:
            heapq.heappush(self.heap, (-r, head))
        elif r < -self.heap[0][0]:
            _, out = heapq.heapreplace(self.heap, (-r, head))
            del self.kept[out]
        else:
            return
        self.kept[head] = [position, record, 1]

    def clusters(self) -> list[tuple[str, list[Any]]]:
        """The kept clusters, ``(cluster id, [position, record, count])``, in input order."""
        return sorted((("c-" + head.hex(), e) for head, e in self.kept.items()), key=lambda ce: ce[1][0])


def _sample_light(
    items: Iterator[Any],
    build: Callable[[Any, str], TrafficRecord],
    groups: dict[str, _BottomK],
    volume: Counter[str],
    skipped: Counter[str],
    allowed: set[str] | None,
    per_type: int,
    per_type_of: Mapping[str, int] | None,
    require_response: bool,
    seed: int,
) -> None:
    """``stratified_sample``'s loop over ``read_traffic``'s ``_light`` items: ``TrafficRecord``s, and rows the
    reader's fast check vouched for as ``(prompt_type, timestamp, response, messages, params, params_json,
    row, where)``, whose record is built (``build(row, where)``) only if the sample keeps it. The same
    counts, clusters and ranks as the loop over records: the cluster key of such a row is written by orjson
    from its parts when ``params_json`` says orjson writes it as json.dumps does (``_canonical_json``)."""
    sha256 = hashlib.sha256
    dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS
    for position, item in enumerate(items):
        if type(item) is tuple:  # kept as it is: its record is built from its row and locator at the end
            t, ts, response, messages, params, params_json, _, _ = record = item
        else:
            t, ts, response = item.prompt_type, item.timestamp, item.response
            messages, params, params_json, record = item.messages, item.params, None, item
        if allowed is not None and t not in allowed:
            continue
        g = groups.get(t)
        if g is None:
            g = groups[t] = _BottomK(seed, t)
        volume[t] += 1
        if ts is not None:
            if g.first is None or ts < g.first:
                g.first = ts
            if g.last is None or ts > g.last:
                g.last = ts
        if require_response and response is None:
            skipped[NO_RESPONSE] += 1
            continue
        key = None
        if params_json is not None:
            try:  # what _canonical_json({"m": messages, "p": params}, str) writes, the params' part already written
                m_json = messages if type(messages) is bytes else dumps(messages, option=sort)
                key = b'{"m":' + m_json + b',"p":' + params_json + b"}"
            except orjson.JSONEncodeError:
                pass
        if key is None:
            key = _canonical_json({"m": messages, "p": params}, str)
        g.offer_head(
            position, record, sha256(key).digest()[:10], per_type_of.get(t, per_type) if per_type_of else per_type
        )
    for g in groups.values():  # the kept rows' records, built now
        for entry in g.kept.values():
            if type(entry[1]) is tuple:
                entry[1] = build(entry[1][6], entry[1][7])


def _merge_parts(
    parts: Sequence[Any],
    groups: dict[str, _BottomK],
    volume: Counter[str],
    skipped: Counter[str],
    per_type: int,
    per_type_of: Mapping[str, int] | None,
    seed: int,
) -> None:
    """The state of one pass over a file from those of its ranges, in file order (``equiv.traffic.split``):
    counts added, a cluster's first record taken from the first range holding it, positions shifted by the
    records before each range, and each type's bottom-k taken again from the ranges' (which hold it)."""
    offset = 0
    kept: dict[str, dict[bytes, list[Any]]] = {}
    ranks: dict[str, dict[bytes, int]] = {}
    for part in parts:
        volume.update(part.volume)
        skipped.update(part.skipped)
        for t, (records, first, last, seen, heap, entries) in part.groups.items():
            g = groups.get(t)
            if g is None:
                g = groups[t] = _BottomK(seed, t)
            g.records += records
            if first is not None and (g.first is None or first < g.first):
                g.first = first
            if last is not None and (g.last is None or last > g.last):
                g.last = last
            if g.seen is not None:
                if seen is None:
                    g.seen = None
                elif not g.seen:
                    g.seen = seen  # the first range's set, taken as it is (no copy)
                else:
                    g.seen |= seen
                if g.seen is not None and len(g.seen) > 1_000_000:
                    g.seen = None
            r, m = ranks.setdefault(t, {}), kept.setdefault(t, {})
            for neg, head in heap:
                r[head] = -neg
            for head, (pos, rec, count) in entries.items():
                e = m.get(head)
                if e is None:
                    m[head] = [pos + offset, rec, count]
                else:
                    e[2] += count
        offset += part.stats.read
    for t, m in kept.items():
        k = per_type_of.get(t, per_type) if per_type_of else per_type
        r = ranks[t]
        best = sorted(m, key=lambda h: (r[h], m[h][0]))[:k]
        g = groups[t]
        g.kept = {h: m[h] for h in best}
        g.heap = [(-r[h], h) for h in best]
        heapq.heapify(g.heap)


def type_rng(seed: int, prompt_type: str) -> random.Random:
    """A seeded RNG of one prompt-type: stable across processes, machines and Python versions."""
    digest = hashlib.sha256(f"{seed}\x00{prompt_type}".encode("utf-8", "surrogatepass")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def stratified_sample(
    records: Iterable[TrafficRecord],
    *,
    per_type: int,
    seed: int,
    per_type_of: Mapping[str, int] | None = None,
    types: Sequence[str] | None = None,
    require_response: bool = False,
) -> Sample:
    """Up to ``per_type`` distinct prompts per prompt-type, uniformly at random, in one pass over ``records``.

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
    groups: dict[str, _BottomK] = {}
    volume: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    split = getattr(records, "_split", None)  # read_traffic's one large JSON Lines file: on several cores
    parts = split(allowed, per_type, dict(per_type_of or {}), require_response, seed) if callable(split) else None
    lit = None
    if parts is not None:
        _merge_parts(parts, groups, volume, skipped, per_type, per_type_of, seed)
    else:
        light = getattr(records, "_light", None)  # read_traffic's records: only those kept are built
        lit = light() if callable(light) else None
    if lit is not None:
        items, build = lit
        _sample_light(items, build, groups, volume, skipped, allowed, per_type, per_type_of, require_response, seed)
    for position, record in enumerate(records if lit is None and parts is None else ()):
        t = record.prompt_type
        if allowed is not None and t not in allowed:
            continue
        g = groups.get(t)
        if g is None:
            g = groups[t] = _BottomK(seed, t)
        volume[t] += 1
        ts = record.timestamp
        if ts is not None:
            if g.first is None or ts < g.first:
                g.first = ts
            if g.last is None or ts > g.last:
                g.last = ts
        if require_response and record.response is None:
            skipped[NO_RESPONSE] += 1
            continue
        g.offer(position, record, per_type_of.get(t, per_type) if per_type_of else per_type)

    order = [t for t in wanted if t in groups] if wanted is not None else sorted(groups)
    kept = {t: groups[t].clusters() for t in order}  # input order
    renamed = _unique_ids({t: [(e[0], e[1]) for _, e in entries] for t, entries in kept.items()})
    sample = Sample(
        volume={t: volume[t] for t in order},
        first_ts={t: groups[t].first for t in order},
        last_ts={t: groups[t].last for t in order},
        skipped=dict(skipped),
        missing_types=[t for t in wanted if t not in groups] if wanted is not None else [],
        per_type=per_type,
        per_type_of=dict(per_type_of or {}),
        seed=seed,
        clusters_seen={t: len(s) if (s := groups[t].seen) is not None else len(kept[t]) for t in order},
        records_seen={t: groups[t].records for t in order},
    )
    for t in order:
        recs = []
        for cluster, (pos, rec, count) in kept[t]:
            final = renamed.get(pos, rec)
            recs.append(final)
            sample.cluster[final.id] = cluster
            sample.weight[final.id] = count
        sample.records[t] = recs
    return sample


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
