"""Routes (`[[routes]]` in equiv.toml), the routing file `equiv qualify` writes, and the LiteLLM snippet.

A route is a standing question ("can support traffic move from gpt-4o to gpt-4o-mini?") that CI and
the nightly job ask again and again. Its settings are the top level of the config with the route's own
models, prompt-type filter and overrides on top, so a route is decided exactly like `equiv compare`.

routing.json (SPEC "routing.json") records, per route and prompt-type, the model to use and the run
and verdict that justify it. A prompt-type moves to the candidate only on GO: INCONCLUSIVE and NO_GO
keep the baseline. The file is merged (routes decided now replace their old entry, others are kept)
and replaced atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from equiv.config import Route, Settings
from equiv.errors import InputError
from equiv.schema import SAMPLING_PARAMS, Verdict, VerdictLabel
from equiv.store import utc_now, write_json_atomic, write_text_atomic

ROUTING_SCHEMA_VERSION = 1
ROUTING_FILE = "routing.json"
SNIPPET_SUFFIX = ".litellm.yaml"  # routing.json -> routing.litellm.yaml beside it


# ---------------------------------------------------------------------------------------------
# route -> settings


def select_routes(settings: Settings, names: list[str] | None = None) -> list[Route]:
    """The routes to run: all of them, or those named (in config order). Errors say what exists."""
    if not settings.routes:
        raise InputError(
            "the config defines no routes: add a [[routes]] table with name, traffic, baseline and "
            'candidate (see docs/reference.md, "Configuration")'
        )
    seen: set[str] = set()
    for r in settings.routes:
        if r.name in seen:
            raise InputError(f"two [[routes]] are named '{r.name}': give each route its own name")
        seen.add(r.name)
    if not names:
        return list(settings.routes)
    unknown = [n for n in names if n not in seen]
    if unknown:
        raise InputError(
            f"no route named {', '.join(repr(n) for n in unknown)} in the config "
            f"(routes: {', '.join(r.name for r in settings.routes)})"
        )
    return [r for r in settings.routes if r.name in names]


def route_settings(settings: Settings, route: Route) -> Settings:
    """The settings one route runs with: top level as defaults, then the route's models and overrides."""
    update: dict[str, Any] = {"baseline": route.baseline, "candidate": route.candidate}
    if route.max_usd_per_request is not None:
        update["max_usd_per_request"] = route.max_usd_per_request
    if route.prompt_types is not None:
        if not [t for t in route.prompt_types if t]:
            raise InputError(f"route '{route.name}': prompt_types must name at least one prompt-type")
        update["types"] = route.prompt_types
    for key in ("margin", "per_type", "judge"):
        value = getattr(route, key)
        if value is not None:
            update[key] = value
    return settings.model_copy(update=update)


def route_traffic(settings: Settings, route: Route) -> Path | str:
    """The route's traffic file: absolute, or relative to the config file (so CI can run from anywhere).
    A URL (``postgresql://``, ``s3://``, ``gs://``) is kept as written; a glob is resolved like a path."""
    if "://" in route.traffic:
        return route.traffic
    raw = Path(route.traffic).expanduser()
    if any(c in route.traffic for c in "*?["):
        return str(raw if raw.is_absolute() or settings.base_dir is None else Path(settings.base_dir) / raw)
    path = raw if raw.is_absolute() or settings.base_dir is None else Path(settings.base_dir) / raw
    if not path.exists():
        relative = settings.base_dir is not None and not raw.is_absolute()
        where = f" (relative to the config's folder {settings.base_dir})" if relative else ""
        raise InputError(f"route '{route.name}': traffic file {path} not found{where}")
    return path


# ---------------------------------------------------------------------------------------------
# routing.json


def type_labels(verdict: Verdict) -> dict[str, VerdictLabel]:
    """Each prompt-type's verdict as the gate reads it. With several candidates (SPEC "Candidates"): GO when
    one candidate is GO (the recommended one), else INCONCLUSIVE when one still might be, else NO_GO."""
    if verdict.candidates is None:
        return {tv.prompt_type: tv.verdict for tv in verdict.prompt_types}
    out: dict[str, VerdictLabel] = {}
    for c in verdict.candidates:
        for tv in c.prompt_types:
            seen = out.get(tv.prompt_type)
            rank = {"GO": 2, "INCONCLUSIVE": 1, "NO_GO": 0}
            if seen is None or rank[tv.verdict] > rank[seen]:
                out[tv.prompt_type] = tv.verdict
    return out


def route_decision(
    route: Route, verdict: Verdict, run_dir: Path | None = None, decided_at: str | None = None
) -> dict[str, Any]:
    """One route's entry in routing.json: per prompt-type the model to use, its verdict and run id.

    With candidate configurations (verdict.json `candidates`), a prompt-type goes to its recommended
    candidate (the cheapest GO), recorded with its name, model, params and its system prompt's hash."""
    types: dict[str, Any] = {}
    if verdict.recommended is not None and verdict.candidates is not None:
        by_name = {c.name: c for c in verdict.candidates}
        for t, label in type_labels(verdict).items():
            name = verdict.recommended.get(t)
            if name is None or name not in by_name:
                types[t] = {"model": route.baseline, "verdict": label, "run_id": verdict.run_id}
                continue
            c = by_name[name]
            decision: dict[str, Any] = {"model": c.model, "verdict": "GO", "run_id": verdict.run_id, "candidate": name}
            for key in ("params", "system_prompt_sha256", "last_turns"):
                if getattr(c, key) is not None:
                    decision[key] = getattr(c, key)
            types[t] = decision
    else:
        candidate = route.candidate if isinstance(route.candidate, str) else route.candidate[0]
        for tv in verdict.prompt_types:
            model = candidate if tv.verdict == "GO" else route.baseline
            types[tv.prompt_type] = {"model": model, "verdict": tv.verdict, "run_id": verdict.run_id}
    entry: dict[str, Any] = {
        "baseline": route.baseline,
        "candidate": route.candidate,
        "decided_at": decided_at or utc_now(),
        "prompt_types": types,
        # optional extensions: the route-level verdict and where its evidence lives
        "verdict": verdict.verdict,
        "run_id": verdict.run_id,
    }
    if run_dir is not None:
        entry["run_dir"] = str(run_dir)
    return entry


def read_routing(path: Path) -> dict[str, Any]:
    """What routing.json holds now ({} when absent). A damaged file is an error, never silently replaced."""
    if not path.exists():
        return {"schema_version": ROUTING_SCHEMA_VERSION, "routes": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e}); fix or delete it before qualifying again") from None
    if not isinstance(data, dict) or not isinstance(data.get("routes", {}), dict):
        raise InputError(f"{path}: not a routing file (expected an object with 'routes'); fix or delete it")
    if int(data.get("schema_version", 1)) > ROUTING_SCHEMA_VERSION:
        raise InputError(f"{path}: schema_version {data['schema_version']} is newer than this equiv understands")
    data.setdefault("routes", {})
    data["schema_version"] = ROUTING_SCHEMA_VERSION
    return data


def merge_routing(existing: Mapping[str, Any], decided: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Routes decided now replace their entry; routes not run this time are kept as they were."""
    routes = dict(existing.get("routes") or {})
    routes.update(decided)
    return {"schema_version": ROUTING_SCHEMA_VERSION, "routes": dict(sorted(routes.items()))}


def snippet_path(routing_path: Path) -> Path:
    return routing_path.with_name(routing_path.stem + SNIPPET_SUFFIX)


def prompts_dir(routing_path: Path) -> Path:
    """Where the routed candidates' system prompts are written: `routing.prompts/` beside routing.json."""
    return routing_path.with_name(routing_path.stem + ".prompts")


def write_prompt_files(routing_path: Path, decided: Mapping[str, dict[str, Any]], settings: Settings) -> list[Path]:
    """The system prompt of every candidate a prompt-type is routed to, written beside routing.json (one file
    per route and prompt-type, `<route>--<prompt-type>.md`), its path recorded in the decision. The text
    comes from the config's [[candidates]] entry and must match the hash the run recorded."""
    from equiv.candidates import prompt_hash

    by_name = {c.name: c for c in settings.candidates}
    written = []
    for route_name, entry in decided.items():
        for t, decision in (entry.get("prompt_types") or {}).items():
            digest = decision.get("system_prompt_sha256")
            if not digest:
                continue
            cand = by_name.get(str(decision.get("candidate")))
            if cand is None or cand.system_prompt is None or prompt_hash(cand.system_prompt) != digest:
                raise InputError(
                    f"route '{route_name}' / {t}: the system prompt of candidate {decision.get('candidate')} changed "
                    "since its run (hash differs): qualify again"
                )
            folder = prompts_dir(routing_path)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / (model_group(str(route_name), str(t)).replace("/", "--") + ".md")
            write_text_atomic(path, cand.system_prompt)
            decision["system_prompt_file"] = str(path.relative_to(routing_path.parent))
            written.append(path)
    return written


def write_routing(path: Path, decided: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge `decided` into routing.json (atomically) and rewrite the LiteLLM snippet beside it."""
    merged = merge_routing(read_routing(path), decided)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, merged)
    return merged


# ---------------------------------------------------------------------------------------------
# LiteLLM Router / proxy snippet


def model_group(route: str, prompt_type: str) -> str:
    """The model name an application asks for: `<route>/<prompt-type>` (kept to safe characters)."""

    def safe(s: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-") or "default"

    return f"{safe(route)}/{safe(prompt_type)}"


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def litellm_snippet(routing: Mapping[str, Any], settings: Settings) -> str:
    """A LiteLLM proxy config (`model_list`) with one model group per route and prompt-type.

    The application calls `model="<route>/<prompt-type>"`; the group points at the candidate where the
    prompt-type is GO and at the baseline otherwise. Keys are referenced as `os.environ/NAME`, never
    written. The same `model_list` loads into `litellm.Router(model_list=...)`.
    """
    lines = [
        "# Written by `equiv qualify` from routing.json: paste into your LiteLLM proxy config,",
        "# or load `model_list` into litellm.Router(model_list=yaml.safe_load(open(this_file))['model_list']).",
        '# Call model="<route>/<prompt-type>"; GO prompt-types go to the candidate, all others stay on the baseline.',
        "model_list:",
    ]
    routes = routing.get("routes") or {}
    n = 0
    for route_name, route in routes.items():
        if not isinstance(route, Mapping):
            continue
        for prompt_type, decision in (route.get("prompt_types") or {}).items():
            if not isinstance(decision, Mapping) or not decision.get("model"):
                continue
            model = str(decision["model"])
            ms = settings.model_settings(model)
            why = f" ({decision['reason']})" if decision.get("reason") else ""  # nightly --fallback says why
            head = f"  # {route_name} / {prompt_type}: {decision.get('verdict')} in run {decision.get('run_id')}{why}"
            lines.append(head.replace("\n", " ").replace("\r", " "))
            lines.append(f"  - model_name: {_q(model_group(str(route_name), str(prompt_type)))}")
            lines.append("    litellm_params:")
            lines.append(f"      model: {_q(ms.litellm_model or model)}")
            if ms.api_base:
                lines.append(f"      api_base: {_q(ms.api_base)}")
            if ms.api_key_env:
                lines.append(f"      api_key: {_q('os.environ/' + ms.api_key_env)}")
            params = decision.get("params")
            for key, value in params.items() if isinstance(params, Mapping) else ():
                if key in SAMPLING_PARAMS:  # the candidate's params (a max_tokens cap ...), as qualified
                    lines.append(f"      {key}: {json.dumps(value, ensure_ascii=False)}")
            lines.append("    model_info:")
            lines.append(f"      equiv_route: {_q(str(route_name))}")
            lines.append(f"      equiv_prompt_type: {_q(str(prompt_type))}")
            lines.append(f"      equiv_verdict: {_q(str(decision.get('verdict') or ''))}")
            if decision.get("candidate"):
                lines.append(f"      equiv_candidate: {_q(str(decision['candidate']))}")
            if decision.get("system_prompt_sha256"):
                # LiteLLM does not rewrite a request's messages: the application sends this system prompt
                lines.append(f"      equiv_system_prompt_file: {_q(str(decision.get('system_prompt_file') or ''))}")
                lines.append(f"      equiv_system_prompt_sha256: {_q(str(decision['system_prompt_sha256']))}")
            if decision.get("last_turns"):
                lines.append(f"      equiv_last_turns: {int(decision['last_turns'])}")
            n += 1
    if n == 0:
        lines[-1] = "model_list: []"
    return "\n".join(lines) + "\n"


def write_snippet(routing_path: Path, routing: Mapping[str, Any], settings: Settings) -> Path:
    path = snippet_path(routing_path)
    write_text_atomic(path, litellm_snippet(routing, settings))
    return path


# ---------------------------------------------------------------------------------------------
# summary.md (the pull-request comment)


def qualify_summary(
    runs: list[tuple[Route, Verdict, Path]], routing_path: Path, code: int, aborted: str | None = None
) -> str:
    """The gate's result, the routing it decided, then each route's own summary.md."""
    from equiv.report.markdown import fmt_interval, fmt_pct, md_text

    gate = {
        0: "PASS — every prompt-type GO",
        1: "FAIL — a prompt-type is NO_GO",
        3: "INCONCLUSIVE — not enough evidence to switch (no NO_GO)",
    }.get(code, f"exit {code}")
    lines = [f"# equiv qualify: {gate if not aborted else 'ABORTED'}", ""]
    if aborted:
        lines += [f"Stopped early: {md_text(aborted)}. Routes not listed below were not decided.", ""]
    if runs:
        lines += [
            "| route | prompt-type | verdict | routes to | quality diff [CI] | saving |",
            "|---|---|:---:|---|---:|---:|",
        ]
        for route, verdict, run_dir in runs:
            decision = route_decision(route, verdict, run_dir)["prompt_types"]
            for tv in _routed_views(verdict):
                d = decision.get(tv.prompt_type, {})
                target = d.get("candidate") or d.get("model") or route.baseline
                saving = fmt_pct(tv.cost.saving.estimate) if tv.cost else "—"
                label = d.get("verdict", tv.verdict)
                lines.append(
                    f"| {md_text(route.name, 80)} | {md_text(tv.prompt_type, 80)} | **{label}** | "
                    f"{md_text(target, 80)} | {fmt_interval(tv.quality_diff)} | {saving} |"
                )
        lines += [
            "",
            f"Routing written to `{md_text(routing_path.name, 80)}` "
            f"(LiteLLM config `{md_text(snippet_path(routing_path).name, 80)}`). "
            "A prompt-type moves to the candidate only on GO.",
            "",
        ]
    for route, _verdict, run_dir in runs:
        part = run_dir / "summary.md"
        if part.is_file():
            lines += [f"### route {md_text(route.name, 80)}", "", part.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def _routed_views(verdict: Verdict) -> list[Any]:
    """Per prompt-type, the TypeVerdict the route's decision rests on: the recommended candidate's, else the
    first candidate's."""
    if verdict.candidates is None or verdict.recommended is None:
        return list(verdict.prompt_types)
    by_name = {c.name: {tv.prompt_type: tv for tv in c.prompt_types} for c in verdict.candidates}
    out = []
    for tv in verdict.prompt_types:
        name = verdict.recommended.get(tv.prompt_type)
        out.append(by_name.get(name, {}).get(tv.prompt_type, tv) if name else tv)
    return out
