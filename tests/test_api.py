"""The package surface: every public name resolves, and neither `import equiv` nor `equiv --help` loads litellm."""

from __future__ import annotations

import subprocess
import sys

import equiv


def test_every_export_resolves() -> None:
    for name in equiv.__all__:
        assert getattr(equiv, name) is not None


def test_help_does_not_import_litellm() -> None:
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom equiv.cli import _register, app\n_register()\n"
            "r = CliRunner().invoke(app, ['compare', '--help'])\nassert r.exit_code == 0, r.output\n"
            "assert '--per-type' in r.output\nprint('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
