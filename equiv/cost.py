"""Cost arithmetic: tokens x prices, the saving, the monthly projection. Pure functions.

Prices themselves live in one place (config + litellm's price map, resolved in llm.client); this
module only does the arithmetic so that the analysis and the reports agree to the cent.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def request_cost(
    prompt_tokens: int, completion_tokens: int, input_cost_per_mtok: float, output_cost_per_mtok: float
) -> float:
    """USD for one call: tokens x price per million tokens."""
    return (prompt_tokens * input_cost_per_mtok + completion_tokens * output_cost_per_mtok) / 1e6


def saving(baseline_total: ArrayLike, candidate_total: ArrayLike) -> NDArray[np.float64]:
    """1 - candidate / baseline (SPEC), vectorized over bootstrap resamples.

    A free baseline cannot be undercut: the saving is then 0 when the candidate is free too and -1
    ("more expensive") otherwise, so the value stays finite and "not cheaper" reads correctly.
    """
    base = np.asarray(baseline_total, dtype=np.float64)
    cand = np.asarray(candidate_total, dtype=np.float64)
    pos = base > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pos, 1.0 - cand / np.where(pos, base, 1.0), np.where(cand > 0, -1.0, 0.0))
    return np.asarray(ratio, dtype=np.float64)


def monthly_projection(monthly_requests: float, baseline_per_request: float, candidate_per_request: float) -> float:
    """USD saved per month if this prompt-type's monthly volume moved to the candidate."""
    return monthly_requests * (baseline_per_request - candidate_per_request)
