from pathlib import Path

import pytest

from equiv.config import load_settings
from equiv.errors import InputError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "equiv.toml"
    p.write_text(text)
    return p


def test_spec_example_config_loads(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
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
""",
    )
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


# ----------------------------------------------------------------------------------- strict values (issue 12 point 4)


@pytest.mark.parametrize(
    ("text", "key", "given", "fix"),
    [
        ('per_type = "200"\n', "per_type", "got '200'", "per_type = 200 (no quotes)"),
        ("per_type = 200.0\n", "per_type", "got 200.0", "a whole number"),
        ("per_type = true\n", "per_type", "got true", "a number, not true/false"),
        ('judge_check = "yes"\n', "judge_check", "got 'yes'", "judge_check = true or judge_check = false"),
        ("judge_check = 1\n", "judge_check", "got 1", "judge_check = true or judge_check = false"),
        ("skip_invalid = 0\n", "skip_invalid", "got 0", "true or"),
        ("concurrency = true\n", "concurrency", "got true", "a number, not true/false"),
        ('margin = "0.1"\n', "margin", "got '0.1'", "margin = 0.1 (no quotes)"),
        ("margin = true\n", "margin", "got true", "a number, not true/false"),
        ("max_spend_usd = false\n", "max_spend_usd", "got false", "a number, not true/false"),
        ("seed = 1.5\n", "seed", "got 1.5", "a whole number"),
        ("bootstrap = 1e4\n", "bootstrap", "got 10000.0", "a whole number"),
        ("judge = 4\n", "judge", "got 4", 'judge = "4"'),
        ('types = "a"\n', "types", "got 'a'", 'types = ["a"]'),
        ('[models."x"]\ninput_cost_per_mtok = true\n', "models.x.input_cost_per_mtok", "got true", "not true/false"),
        ('[models."x"]\ntimeout = "30"\n', "models.x.timeout", "got '30'", "timeout = 30 (no quotes)"),
        (
            '[[routes]]\nname = "r"\ntraffic = "t.jsonl"\nbaseline = "a"\ncandidate = "b"\nper_type = "5"\n',
            "routes.0.per_type",
            "got '5'",
            "per_type = 5 (no quotes)",
        ),
    ],
)
def test_a_wrongly_typed_value_is_refused_naming_key_value_and_fix(
    tmp_path: Path, text: str, key: str, given: str, fix: str
) -> None:
    p = write(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_settings(p)
    msg = e.value.message
    assert f"{p}: key '{key}'" in msg and given in msg and fix in msg, msg


@pytest.mark.parametrize("margin", ["0", "1", "1.0", "1.5", "-0.1"])
def test_margin_must_be_inside_0_1(tmp_path: Path, margin: str) -> None:
    with pytest.raises(InputError, match="key 'margin'"):
        load_settings(write(tmp_path, f"margin = {margin}\n"))
    route = '[[routes]]\nname = "r"\ntraffic = "t"\nbaseline = "a"\ncandidate = "b"\nmargin = ' + margin + "\n"
    with pytest.raises(InputError, match="key 'routes.0.margin'"):
        load_settings(write(tmp_path, route))
    with pytest.raises(InputError, match="setting 'margin'"):
        load_settings(None, {"margin": float(margin)})  # a CLI flag is held to the same range


def test_integers_are_fine_for_float_keys_and_cli_overrides_keep_working(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "max_spend_usd = 20\nmargin = 0.999\ntimeout_s = 60\ncost_regression_share = 1\n"
        '[models."x"]\ninput_cost_per_mtok = 1\noutput_cost_per_mtok = 0\ntimeout = 30\n',
    )
    s = load_settings(p)
    assert s.max_spend_usd == 20.0 and isinstance(s.max_spend_usd, float) and s.timeout_s == 60.0
    assert s.models["x"].input_cost_per_mtok == 1.0 and s.models["x"].timeout == 30.0
    # overrides arrive typed from typer (and from run.json in `equiv report`)
    o = load_settings(
        p,
        {
            "per_type": 50,
            "margin": 0.05,
            "alpha": 0.1,
            "max_spend_usd": 3,
            "types": ["a", "b"],
            "skip_invalid": True,
            "judge_check": False,
            "correction": "holm",
            "seed": 7,
            "concurrency": None,
        },
    )
    assert (o.per_type, o.margin, o.alpha, o.max_spend_usd, o.types, o.skip_invalid) == (
        50,
        0.05,
        0.1,
        3.0,
        ["a", "b"],
        True,
    )
    assert o.judge_check is False and o.correction == "holm" and o.seed == 7 and o.concurrency == 16
    assert load_settings(None, {"types": ("a",)}).types == ["a"]  # a tuple from Python is a list of names


def test_a_wrongly_typed_override_names_the_setting_not_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, "seed = 3\n")
    with pytest.raises(InputError) as e:
        load_settings(p, {"per_type": True})
    assert "setting 'per_type'" in e.value.message and str(p) not in e.value.message
