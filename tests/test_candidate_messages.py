"""What a candidate configuration sends (equiv/candidates.py): its system prompt, its context, its params."""

from __future__ import annotations

from pathlib import Path

import pytest

from equiv.candidates import candidate_messages, candidate_params, describe, prompt_hash
from equiv.config import CandidateConfig, load_settings
from equiv.errors import InputError

CONVO = [
    {"role": "system", "content": "old rules"},
    {"role": "user", "content": "u1"},
    {"role": "assistant", "content": "a1"},
    {"role": "user", "content": "u2"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
    {"role": "tool", "tool_call_id": "c1", "content": "result"},
    {"role": "assistant", "content": "a2"},
    {"role": "user", "content": "u3"},
]


def test_system_prompt_replaces_the_leading_system_message():
    c = CandidateConfig(name="x", model="m", system_prompt="new rules")
    out = candidate_messages(c, CONVO)
    assert out[0] == {"role": "system", "content": "new rules"}
    assert out[1:] == CONVO[1:]
    # a conversation without one gets it first
    assert candidate_messages(c, CONVO[1:])[0]["content"] == "new rules"
    assert len(candidate_messages(c, CONVO[1:])) == len(CONVO)


def test_last_turns_keeps_whole_turns_and_the_system_message():
    c = CandidateConfig(name="x", model="m", last_turns=2)
    out = candidate_messages(c, CONVO)
    assert [m.get("content") for m in out] == [
        "old rules",
        "u2",
        None,
        "result",
        "a2",
        "u3",
    ]  # tool call kept with its result
    assert candidate_messages(CandidateConfig(name="x", model="m", last_turns=9), CONVO) == CONVO


def test_params_override_and_are_sampling_params_only():
    c = CandidateConfig(name="x", model="m", params={"max_tokens": 100})
    assert candidate_params(c, {"max_tokens": 500, "temperature": 0}) == {"max_tokens": 100, "temperature": 0}
    with pytest.raises(ValueError, match="not a sampling parameter"):
        CandidateConfig(name="x", model="m", params={"api_key": "sk-x"})


def test_describe_records_the_prompt_hash_not_the_prompt():
    d = describe(CandidateConfig(name="x", model="m", system_prompt="secret sauce", last_turns=3))
    assert d == {"name": "x", "model": "m", "system_prompt_sha256": prompt_hash("secret sauce"), "last_turns": 3}


def test_system_prompt_files(tmp_path: Path):
    (tmp_path / "p.md").write_text("from a file")
    (tmp_path / "opt.json").write_text('{"system_prompt": "optimized", "splits": {}}')
    cfg = tmp_path / "equiv.toml"
    cfg.write_text(
        '[[candidates]]\nname = "a"\nmodel = "m"\nsystem_prompt = "p.md"\n'
        '[[candidates]]\nname = "b"\nmodel = "m"\nsystem_prompt = "opt.json"\n'
        '[[candidates]]\nname = "c"\nmodel = "m"\nsystem_prompt = "Be brief. Mention every detail."\n'
    )
    s = load_settings(cfg)
    assert [c.system_prompt for c in s.candidates] == ["from a file", "optimized", "Be brief. Mention every detail."]
    cfg.write_text('[[candidates]]\nname = "a"\nmodel = "m"\nsystem_prompt = "typo.md"\n')
    with pytest.raises(InputError, match=r"candidates\[0\]\.system_prompt.*typo\.md not found"):
        load_settings(cfg)


def test_candidate_names_resolve_to_configurations_or_models(tmp_path: Path):
    cfg = tmp_path / "equiv.toml"
    cfg.write_text(
        'candidate = ["tuned", "gpt-4o-mini"]\n[[candidates]]\nname = "tuned"\nmodel = "m"\nlast_turns = 1\n'
    )
    s = load_settings(cfg)
    assert [(c.name, c.model, c.last_turns) for c in s.candidate_configs()] == [
        ("tuned", "m", 1),
        ("gpt-4o-mini", "gpt-4o-mini", None),
    ]
    cfg.write_text('candidate = ["a", "a"]\n')
    with pytest.raises(InputError, match="named twice"):
        load_settings(cfg)
