"""The fake provider runs through litellm's real call path; prices are resolved before any call."""

import asyncio
import subprocess
import sys

import pytest

from equiv.config import Settings
from equiv.errors import PriceError
from equiv.llm import client, fake

MSG = [{"role": "user", "content": "Refund the duplicate invoice charge for the annual subscription"}]


def test_fake_model_through_litellm_matches_the_simulated_world() -> None:
    spec = client.resolve_model("fake/skill-80", Settings())
    comp = asyncio.run(client.acomplete(spec, MSG, {"temperature": 0}, None))
    text, pt, ct = fake.reply("fake/skill-80", MSG)
    assert comp.output == text and comp.prompt_tokens == pt and comp.completion_tokens == ct
    assert comp.cost_usd == pytest.approx(pt * spec.input_per_token + ct * spec.output_per_token)


def test_known_price_from_litellm_map_and_config_override() -> None:
    spec = client.resolve_model("gpt-4o-mini", Settings())
    assert spec.input_per_token == pytest.approx(0.15e-6)
    s = Settings.model_validate({"models": {"gpt-4o-mini": {"input_cost_per_mtok": 1.0, "output_cost_per_mtok": 0}}})
    spec2 = client.resolve_model("gpt-4o-mini", s)
    assert spec2.input_per_token == pytest.approx(1e-6) and spec2.output_per_token == 0


def test_unknown_price_is_refused_with_the_config_to_add() -> None:
    with pytest.raises(PriceError) as e:
        client.resolve_model("openai/house-model-7b", Settings())
    assert '[models."openai/house-model-7b"]' in e.value.message and "input_cost_per_mtok" in e.value.message


def test_help_does_not_import_litellm() -> None:
    code = "import sys, equiv.cli, equiv.cli.compare, equiv.cli.report; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
