"""An equiv.toml with [[routes]] for the loopback server (shared by the qualify and nightly tests)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from equiv.testing.loopback import LoopbackServer

from .conftest import PRICES, make_records, write_jsonl


def write_route_config(
    path: Path, srv: LoopbackServer, routes: list[dict[str, Any]], judge: str = "judge", **top: Any
) -> Path:
    lines = [f'judge = "openai/{judge}"']
    defaults = {"concurrency": 8, "bootstrap": 2000, "max_spend_usd": 5.0, "timeout_s": 5.0, "per_type": 40}
    for k, v in {**defaults, **top}.items():
        lines.append(f"{k} = {json.dumps(v)}")
    models = {judge}
    for r in routes:
        lines.append("[[routes]]")
        for k, v in r.items():
            if k in ("baseline", "candidate", "judge"):
                models.add(v)
                v = f"openai/{v}"
            lines.append(f"{k} = {json.dumps(v)}")
    for name in sorted(models):
        pin, pout = PRICES.get(name, (0.15, 0.6))
        lines += [
            f'[models."openai/{name}"]',
            f'api_base = "{srv.base_url}"',
            f"input_cost_per_mtok = {pin}",
            f"output_cost_per_mtok = {pout}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_traffic(path: Path, types: list[str], per_type: int, *, age: timedelta | None = None, seed: int = 7) -> Path:
    """Traffic logged by skill-95; with `age`, every record is stamped that long ago."""
    rows = make_records(types, per_type, seed=seed)
    if age is not None:
        when = (datetime.now(UTC) - age).isoformat()
        for r in rows:
            r["timestamp"] = when
    return write_jsonl(path, rows)
