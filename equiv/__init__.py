"""equiv: can this prompt-type move to a cheaper model without losing quality? Measured on your traffic.

The command line (`equiv compare`, `equiv report`, ...) is the main interface. From Python::

    from equiv import load_settings, compare
    result = compare("traffic.jsonl", load_settings("equiv.toml", {"per_type": 100}))
    print(result.verdict.verdict, result.run_dir)

Names are imported on first use, so `import equiv` stays fast (litellm is imported only for calls).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "compare": "equiv.pipeline",
    "RunResult": "equiv.pipeline",
    "load_settings": "equiv.config",
    "Settings": "equiv.config",
    "analyze": "equiv.analyze",
    "read_traffic": "equiv.traffic",
    "Verdict": "equiv.schema",
    "Pair": "equiv.schema",
    "EquivError": "equiv.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'equiv' has no attribute {name!r}")
    return getattr(import_module(module), name)
