"""equiv: can this prompt-type move to a cheaper model without losing quality? Measured on your traffic.

The command line (`equiv compare`, `equiv report`, ...) is the main interface. From Python (SPEC "Python API")::

    import equiv

    result = equiv.compare("traffic.jsonl", config="equiv.toml", per_type=100)
    print(result.verdict.verdict, result.run_dir)
    verdict = equiv.report(result.run_dir, margin=0.05)  # re-analysis: no model calls, nothing written
    run = equiv.load_run(result.run_dir)  # .info, .pairs, .checks, .verdict, typed

    result = await equiv.acompare("traffic.jsonl", baseline="gpt-4o", candidate="gpt-4o-mini")

`compare` works in a script, in a notebook and inside a running event loop.

The names below are typed and visible to type checkers and IDEs (the `TYPE_CHECKING` imports); at run time
each is imported on first use, so `import equiv` stays fast (no numpy, no litellm until a run needs them).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from equiv.api import Run as Run
    from equiv.api import RunInfo as RunInfo
    from equiv.api import acompare as acompare
    from equiv.api import compare as compare
    from equiv.api import load_run as load_run
    from equiv.api import report as report
    from equiv.config import Settings as Settings
    from equiv.config import load_settings as load_settings
    from equiv.errors import AbortedError as AbortedError
    from equiv.errors import EquivError as EquivError
    from equiv.errors import InputError as InputError
    from equiv.pipeline import RunResult as RunResult
    from equiv.schema import Check as Check
    from equiv.schema import Pair as Pair
    from equiv.schema import Verdict as Verdict
    from equiv.traffic import read_traffic as read_traffic

__version__ = "0.1.0"

# name -> the module it comes from; the same list as the TYPE_CHECKING imports above (a test checks it).
# No name here may be a submodule's (importing equiv.analyze would replace an `equiv.analyze` function with
# the module); `report` is the exception that works, the equiv.report package being callable.
_EXPORTS = {
    "compare": "equiv.api",
    "acompare": "equiv.api",
    "report": "equiv.report",  # the equiv.report package, callable: equiv.report(run_dir) is equiv.api.report
    "load_run": "equiv.api",
    "Run": "equiv.api",
    "RunInfo": "equiv.api",
    "RunResult": "equiv.pipeline",
    "Settings": "equiv.config",
    "load_settings": "equiv.config",
    "read_traffic": "equiv.traffic",
    "Verdict": "equiv.schema",
    "Pair": "equiv.schema",
    "Check": "equiv.schema",
    "EquivError": "equiv.errors",
    "InputError": "equiv.errors",
    "AbortedError": "equiv.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'equiv' has no attribute {name!r}")
    value = import_module(module) if name == "report" else getattr(import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
