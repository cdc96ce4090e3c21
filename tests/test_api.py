"""The Python API (SPEC "Python API"): compare / acompare inside a running event loop, report, load_run,
static typed exports, and neither `import equiv` nor `equiv --help` loading the heavy dependencies.

The runs use the simulated demo (fixtures/equiv.toml: fake/* models through litellm, no network) on one
prompt-type and a handful of pairs.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import importlib
import importlib.util
import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import equiv
from equiv.errors import InputError
from equiv.schema import Verdict

ROOT = Path(__file__).resolve().parents[1]
TRAFFIC = ROOT / "fixtures" / "traffic.jsonl"
SMALL: dict[str, Any] = {
    "config": ROOT / "fixtures" / "equiv.toml",
    "per_type": 4,
    "types": ["ticket-triage"],
    "bootstrap": 200,
    "judge_check_min": 2,
}


def _on_disk(run_dir: Path) -> Verdict:
    return Verdict.model_validate_json((run_dir / "verdict.json").read_bytes())


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def in_loop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `equiv.compare` called synchronously from inside a running loop, then `await equiv.acompare` of the
    same command into the same folder (it finds the finished run: re-reported, nothing bought again)."""
    out = tmp_path_factory.mktemp("api") / "reports"
    seen: dict[str, Any] = {"ticks": 0, "events": []}

    async def ticker() -> None:
        while True:
            seen["ticks"] += 1
            await asyncio.sleep(0)

    async def main() -> None:
        asyncio.get_running_loop()  # a loop is running, as in a notebook or an async app
        seen["sync"] = equiv.compare(TRAFFIC, out=out, on_event=lambda k, d: seen["events"].append(k), **SMALL)
        tick = asyncio.ensure_future(ticker())
        try:
            seen["async"] = await equiv.acompare(TRAFFIC, out=out, **SMALL)
        finally:
            tick.cancel()

    asyncio.run(main())
    seen["out"] = out
    return seen


def test_compare_works_inside_a_running_event_loop(in_loop: dict[str, Any]) -> None:
    result = in_loop["sync"]
    assert result.aborted is None
    assert result.run_dir.parent == in_loop["out"]
    assert result.verdict.model_dump(mode="json") == _on_disk(result.run_dir).model_dump(mode="json")
    assert [t.prompt_type for t in result.verdict.prompt_types] == ["ticket-triage"]
    assert result.verdict.prompt_types[0].n == 4
    assert {"estimate", "phase", "pair"} <= set(in_loop["events"])


def test_acompare_is_a_coroutine_that_leaves_the_loop_free_and_resumes_the_same_run(in_loop: dict[str, Any]) -> None:
    assert inspect.iscoroutinefunction(equiv.acompare)
    sync, again = in_loop["sync"], in_loop["async"]
    assert again.run_dir == sync.run_dir  # same command, same key: the finished run is re-reported
    assert again.info["calls"]["bought_this_session"] == 0
    assert again.verdict.model_dump(mode="json") == _on_disk(again.run_dir).model_dump(mode="json")
    assert again.verdict.prompt_types[0].quality_diff == sync.verdict.prompt_types[0].quality_diff
    assert in_loop["ticks"] > 0  # other tasks ran while acompare worked: the loop was not blocked throughout


def test_report_reanalyzes_and_writes_nothing(in_loop: dict[str, Any]) -> None:
    run_dir: Path = in_loop["sync"].run_dir
    before = _snapshot(run_dir.parent)
    same = equiv.report(run_dir)
    assert isinstance(same, Verdict)
    assert same.model_dump(mode="json") == _on_disk(run_dir).model_dump(mode="json")  # same settings, same verdict
    wider = equiv.report(run_dir / "pairs.jsonl", margin=0.3, alpha=0.1)
    assert (wider.margin, wider.alpha) == (0.3, 0.1)
    assert equiv.report(run_dir, config=equiv.Settings(margin=0.25)).margin == 0.25
    assert _snapshot(run_dir.parent) == before  # no verdict.json, summary.md or report.html rewritten


def test_a_wrong_setting_is_an_input_error_naming_the_key(in_loop: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="marginn"):
        equiv.report(in_loop["sync"].run_dir, marginn=0.2)
    with pytest.raises(InputError, match="per_type"):
        equiv.compare(TRAFFIC, out=in_loop["out"], **{**SMALL, "per_type": "many"})


def test_load_run_round_trip(in_loop: dict[str, Any], tmp_path: Path) -> None:
    result = in_loop["sync"]
    run = equiv.load_run(result.run_dir)
    assert isinstance(run, equiv.Run) and isinstance(run.info, equiv.RunInfo)
    assert run.verdict is not None
    assert run.verdict.model_dump(mode="json") == result.verdict.model_dump(mode="json")
    assert run.run_id == result.run_dir.name == run.info.run_id
    assert len(run.pairs) == 4 and all(isinstance(p, equiv.Pair) for p in run.pairs)
    assert all(isinstance(c, equiv.Check) for c in run.checks) and run.checks
    assert run.info.command == "compare" and run.info.finished_at is not None
    assert run.info.models["fake/skill-99"].input_cost_per_mtok == 2.5
    assert run.info.eval_cost_usd == result.verdict.eval_cost_usd

    # run.json from another equiv version: unknown fields kept, missing ones None
    copy = tmp_path / "copy"
    shutil.copytree(result.run_dir, copy)
    info = json.loads((copy / "run.json").read_text())
    info["a_future_field"] = {"x": 1}
    del info["finished_at"]
    (copy / "run.json").write_text(json.dumps(info))
    later = equiv.load_run(copy)
    assert later.info.model_extra is not None and later.info.model_extra["a_future_field"] == {"x": 1}
    assert later.info.finished_at is None
    with pytest.raises(InputError, match="not a run directory"):
        equiv.load_run(tmp_path / "nowhere")


def test_a_run_that_fails_before_its_first_record_leaves_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import equiv.pipeline as pipeline

    async def fails_at_start(traffic: Path, settings: Any, models: Any, run: Any, *args: Any) -> Any:
        run.write_run_info({"run_id": run.run_id, "started_at": "now"})
        run.rewrite("pairs.jsonl", [])
        raise InputError("set OPENAI_API_KEY")

    monkeypatch.setattr(pipeline, "_execute", fails_at_start)
    out = tmp_path / "reports"
    with pytest.raises(InputError, match="OPENAI_API_KEY"):
        equiv.compare(TRAFFIC, out=out, **SMALL)
    assert not out.exists()

    async def in_loop() -> None:
        with pytest.raises(InputError):
            equiv.compare(TRAFFIC, out=out, **SMALL)
        with pytest.raises(InputError):
            await equiv.acompare(TRAFFIC, out=out, **SMALL)

    asyncio.run(in_loop())
    assert not out.exists()

    # a directory that holds a record, or one that was there before (--resume), is kept
    async def fails_after_a_pair(traffic: Path, settings: Any, models: Any, run: Any, *args: Any) -> Any:
        run.file("pairs.jsonl").write_text('{"pair_id": "x"}\n')
        raise InputError("later")

    monkeypatch.setattr(pipeline, "_execute", fails_after_a_pair)
    with pytest.raises(InputError):
        equiv.compare(TRAFFIC, out=out, **SMALL)
    assert [p.name for p in out.iterdir()] and (next(out.iterdir()) / "pairs.jsonl").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setattr(pipeline, "_execute", fails_at_start)
    with pytest.raises(InputError):
        equiv.compare(TRAFFIC, resume=mine, **SMALL)
    assert mine.is_dir()


# --- exports -----------------------------------------------------------------------------------------------


def _type_checking_imports() -> dict[str, str]:
    """name -> module of the imports under `if TYPE_CHECKING:` in equiv/__init__.py (what mypy and IDEs see)."""
    tree = ast.parse((ROOT / "equiv" / "__init__.py").read_text())
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                for alias in imp.names:
                    assert alias.asname == alias.name, "re-exported names are written `import X as X`"
                    out[alias.name] = imp.module
    return out


def test_every_export_is_visible_statically_and_resolves_to_its_source() -> None:
    static = _type_checking_imports()
    assert set(equiv.__all__) == {"__version__", *static}
    for name, module in static.items():
        value = getattr(equiv, name)
        source = getattr(importlib.import_module(module), name)
        if name == "report":  # the equiv.report package, callable as equiv.api.report
            assert callable(value) and value is sys.modules["equiv.report"]
        else:
            assert value is source, name
    assert set(equiv.__all__) <= set(dir(equiv))
    # a name that is also a submodule's would be replaced by the module once something imports it
    clashes = [n for n in static if n != "report" and importlib.util.find_spec(f"equiv.{n}") is not None]
    assert clashes == []


def test_report_stays_callable_after_the_report_modules_are_imported() -> None:
    import equiv.report.html
    import equiv.report.terminal

    assert callable(equiv.report) and equiv.report.html.render_html is not None


def test_mypy_sees_the_typed_exports(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    snippet = tmp_path / "use_equiv.py"
    snippet.write_text(
        "import equiv\n"
        "from equiv import Run, RunInfo, RunResult, Verdict\n\n\n"
        "def use() -> None:\n"
        "    r: RunResult = equiv.compare('t.jsonl', baseline='a', candidate='b', per_type=3)\n"
        "    v: Verdict = equiv.report(r.run_dir, margin=0.05)\n"
        "    run: Run = equiv.load_run(r.run_dir)\n"
        "    info: RunInfo = run.info\n"
        "    cost: float | None = info.eval_cost_usd\n"
        "    print(v, cost, equiv.__version__)\n\n\n"
        "async def use_async() -> RunResult:\n"
        "    return await equiv.acompare('t.jsonl', config='equiv.toml')\n\n\n"
        "wrong: int = equiv.load_run('x')\n"
    )
    # from the project root: mypy reads pyproject's settings and reuses its cache
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    # exactly one error, the deliberate one: the names are typed (an Any export would raise none)
    assert len(errors) == 1, proc.stdout + proc.stderr
    assert ":18: error: Incompatible types in assignment" in errors[0] and '"Run"' in errors[0]


HEAVY = ("litellm", "numpy", "scipy", "datasets", "jinja2", "equiv.pipeline", "equiv.analyze")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()


def test_import_equiv_loads_nothing_heavy() -> None:
    assert _loaded_after("import equiv") == []


def test_help_does_not_import_litellm_numpy_or_datasets() -> None:
    code = (
        "from typer.testing import CliRunner\nfrom equiv.cli import _register, app\n_register()\n"
        "for args in (['--help'], ['compare', '--help'], ['report', '--help'], ['qualify', '--help']):\n"
        "    r = CliRunner().invoke(app, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "assert '--per-type' in CliRunner().invoke(app, ['compare', '--help']).output"
    )
    assert _loaded_after(code) == []


def test_the_package_is_marked_typed() -> None:
    assert (Path(equiv.__file__).parent / "py.typed").is_file()  # PEP 561; hatch ships every file under equiv/
