"""People's labels of a run's pairs (`equiv calibrate RUN --labels FILE` writes RUN/human_labels.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

HUMAN_LABELS = "human_labels.jsonl"
GOLD = ("baseline", "candidate", "tie")


def load_labels(run_dir: Path) -> dict[str, str] | None:
    """pair_id -> gold from RUN/human_labels.jsonl (the last label of a pair wins); None when there is none."""
    path = Path(run_dir) / HUMAN_LABELS
    if not path.is_file():
        return None
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line of an interrupted write
        if isinstance(row, dict) and isinstance(row.get("pair_id"), str) and row.get("gold") in GOLD:
            out[row["pair_id"]] = row["gold"]
    return out or None
