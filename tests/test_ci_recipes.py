"""The CI recipes in docs/ci parse, and every `equiv` option they use exists (so the docs cannot drift)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from equiv.cli import _register, app

CI = Path(__file__).resolve().parent.parent / "docs" / "ci"


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((CI / name).read_text())
    assert isinstance(doc, dict)
    return doc


def triggers(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.get("on") or doc[True]  # YAML 1.1 reads the bare key `on` as true


def runs(doc: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for job in doc["jobs"].values() for step in job["steps"])


def equiv_commands(text: str) -> list[list[str]]:
    """Every `equiv <command> ...` invocation in a shell text, as argv after `equiv`."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        for m in re.finditer(r"(?:^|[\s/&;|])equiv\s+(qualify|nightly|history|compare|report)\b([^|&;>]*)", line):
            out.append([m.group(1), *shlex.split(m.group(2))])
    return out


def check_options(argv: list[str]) -> None:
    _register()
    group = typer.main.get_command(app)
    command = group.commands[argv[0]]  # type: ignore[attr-defined]
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for arg in argv[1:]:
        if arg.startswith("-"):
            assert arg.split("=")[0] in known, f"equiv {argv[0]} has no option {arg}"


def test_qualify_workflow() -> None:
    doc = load("equiv-qualify.yml")
    on = triggers(doc)
    assert "equiv.toml" in on["pull_request"]["paths"]
    assert doc["permissions"]["pull-requests"] == "write"
    text = runs(doc)
    cmds = equiv_commands(text)
    assert [c[0] for c in cmds] == ["qualify"]
    check_options(cmds[0])
    assert "gh pr comment" in text and "--body-file reports/summary.md" in text


def test_nightly_workflow() -> None:
    doc = load("equiv-nightly.yml")
    on = triggers(doc)
    cron = on["schedule"][0]["cron"]
    assert len(cron.split()) == 5
    cmds = equiv_commands(runs(doc))
    assert [c[0] for c in cmds] == ["nightly"] and "--since" in cmds[0]
    check_options(cmds[0])
    steps = [s.get("uses", "") for s in doc["jobs"]["nightly"]["steps"]]
    assert any(s.startswith("actions/cache/restore") for s in steps)
    assert any(s.startswith("actions/cache/save") for s in steps)


def test_cron_line() -> None:
    lines = [x for x in (CI / "crontab").read_text().splitlines() if x.strip() and not x.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5])
    assert "%" not in fields[5]  # cron turns % into a newline
    cmds = equiv_commands(fields[5])
    assert [c[0] for c in cmds] == ["nightly"]
    check_options(cmds[0])


@pytest.mark.parametrize("name", ["equiv-qualify.yml", "equiv-nightly.yml", "crontab"])
def test_operations_doc_links_every_recipe(name: str) -> None:
    assert f"ci/{name}" in (CI.parent / "operations.md").read_text()
