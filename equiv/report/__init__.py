"""The reports (terminal table, summary.md, report.html) and, called, SPEC's `equiv.report(...)`.

`equiv.report` is both this package and the Python API's re-analysis function: ``equiv.report(run_dir,
margin=0.05)`` calls `equiv.api.report` (a Verdict, nothing written), while ``equiv.report.html`` and
friends stay importable as modules.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from equiv.config import Settings
    from equiv.schema import Verdict


class _CallableReport(types.ModuleType):
    def __call__(
        self, run_dir_or_pairs: str | Path, *, config: str | Path | Settings | None = None, **settings: Any
    ) -> Verdict:
        from equiv.api import report

        return report(run_dir_or_pairs, config=config, **settings)


sys.modules[__name__].__class__ = _CallableReport
