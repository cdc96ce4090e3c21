from pathlib import Path

import pytest

from equiv.config import load_settings
from equiv.errors import InputError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "equiv.toml"
    p.write_text(text)
    return p


def test_spec_example_config_loads(tmp_path: Path) -> None:
    p = write(tmp_path, '''
margin = 0.10
alpha = 0.05
per_type = 200
seed = 0
concurrency = 16
max_spend_usd = 20.0
bootstrap = 10000
judge = "gpt-4.1"
judge_template = "judges/pairwise.md"
baseline_source = "logged"
correction = "none"

[[routes]]
name = "support-mini"
traffic = "logs/support.jsonl"
baseline = "gpt-4o"
candidate = "gpt-4o-mini"
prompt_types = ["ticket-triage", "reply-draft"]

[models."openai/my-local"]
api_base = "http://127.0.0.1:8000/v1"
api_key_env = "MY_LOCAL_KEY"
input_cost_per_mtok = 0.15
output_cost_per_mtok = 0.60
''')
    s = load_settings(p)
    assert s.routes[0].candidate == "gpt-4o-mini"
    assert s.models["openai/my-local"].input_cost_per_mtok == 0.15


def test_cli_overrides_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "margin = 0.2\nseed = 3\n"), {"margin": 0.05, "seed": None})
    assert s.margin == 0.05 and s.seed == 3


@pytest.mark.parametrize(
    "text, needle",
    [
        ("margn = 0.1\n", "unknown key 'margn'"),
        ('margin = "wide"\n', "key 'margin'"),
        ('[models."x"]\ninput_cost_per_mtok = "cheap"\n', "models.x.input_cost_per_mtok"),
        ('[models."x"]\napi_key = "sk-123"\n', "unknown key 'models.x.api_key'"),
        ('correction = "sidak"\n', "key 'correction'"),
        ("margin = \n", "invalid TOML"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path: Path, text: str, needle: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_settings(p)
    assert needle in e.value.message and str(p) in e.value.message


def test_missing_key_env_is_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQUIV_TEST_NOKEY", raising=False)
    s = load_settings(write(tmp_path, '[models."m"]\napi_key_env = "EQUIV_TEST_NOKEY"\n'))
    with pytest.raises(InputError, match="EQUIV_TEST_NOKEY"):
        s.api_key("m")
