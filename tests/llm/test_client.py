"""The fake provider runs through litellm's real call path; prices are resolved before any call."""

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest

from equiv.config import Settings
from equiv.errors import PriceError
from equiv.llm import answer, client, fake
from equiv.schema import Completion

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


def test_the_cli_imports_litellm_with_the_collector_paused_then_frozen() -> None:
    """`equiv` (the CLI's main sets the flag) imports litellm with no collector pass, then freezes what it
    left; an importer of the library (the flag unset) gets the pause only, and its collector setting back."""
    cli = (
        "import gc; from equiv.llm import client; client.FREEZE_AFTER_IMPORT = True; "
        "passes = []; gc.callbacks.append(lambda phase, info: passes.append(info['generation'])); "
        "client._litellm(); print(gc.get_freeze_count(), gc.isenabled(), passes.count(2))"
    )
    frozen, enabled, full_passes = subprocess.run(
        [sys.executable, "-c", cli], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(frozen) > 100_000 and enabled == "True" and full_passes == "0"
    library = (
        "import gc; from equiv.llm import client; gc.disable(); client._litellm(); "
        "print(gc.get_freeze_count(), gc.isenabled())"
    )
    out = subprocess.run([sys.executable, "-c", library], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "False"]


# -- replies that are not plain text, through litellm's real code path ------------------------------------------
# (HTTP to the loopback server, and the fake/ custom provider): none of them may become a silent ""

LOOKUP_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {"type": "object", "properties": {"answer": {"type": "string"}}},
        },
    }
]


def _loopback_complete(model: str, msgs: list[dict[str, object]], params: dict[str, object]) -> Completion:
    from equiv.testing.loopback import LoopbackServer

    with LoopbackServer() as srv:
        spec = client.ModelSpec(
            name=f"openai/{model}",
            call_model=f"openai/{model}",
            api_base=srv.base_url,
            api_key_env=None,
            input_per_token=1e-6,
            output_per_token=4e-6,
            timeout_s=10,
        )
        comp = asyncio.run(client.acomplete(spec, msgs, params, "sk-test"))
        assert [r["status"] for r in srv.requests] == [200]
    return comp


def _blocked_prompt(model: str) -> list[dict[str, object]]:
    for i in range(50):
        msgs = [{"role": "user", "content": f"Ticket {i}: refund the duplicate invoice charge please"}]
        if fake.hit(model, msgs):  # type: ignore[arg-type]
            return msgs  # type: ignore[return-value]
    raise AssertionError("no prompt struck")


def test_a_tool_call_reply_is_rendered_as_the_call_and_kept_structured() -> None:
    """Before: content null -> output "" (the candidate silently lost). Also before: any call with `tools` failed
    in litellm ("No module named 'mcp'"), so tool-calling traffic could not be compared at all."""
    text = fake.reply("fake/skill-80", MSG)[0]
    for comp in (
        _loopback_complete("skill-80-tools", MSG, {"tools": LOOKUP_TOOLS}),
        asyncio.run(
            client.acomplete(
                client.resolve_model("fake/skill-80-tools", Settings()), MSG, {"tools": LOOKUP_TOOLS}, None
            )
        ),
    ):
        assert comp.output == f"[tool call] lookup_order\narguments: {json.dumps({'answer': text})}"
        assert comp.finish_reason == "tool_calls"
        assert comp.tool_calls is not None and comp.tool_calls[0]["function"]["name"] == "lookup_order"
        assert json.loads(comp.tool_calls[0]["function"]["arguments"]) == {"answer": text}
        assert comp.completion_tokens > 0 and comp.cost_usd >= 0


def test_a_tool_that_names_an_mcp_gateway_is_sent_to_the_model_never_run_by_litellm() -> None:
    tools = [{"type": "mcp", "server_label": "x", "server_url": "litellm_proxy/mcp/x", "require_approval": "never"}]
    comp = _loopback_complete("skill-80", MSG, {"tools": tools})
    assert comp.output == fake.reply("fake/skill-80", MSG)[0]


def test_a_reply_blocked_or_cut_by_the_content_filter_says_what_the_user_got() -> None:
    msgs = _blocked_prompt("openai/skill-80-filtered")
    text = fake.reply("fake/skill-80", msgs)[0]  # type: ignore[arg-type]
    blocked = _loopback_complete("skill-80-filtered", msgs, {})
    assert blocked.output == answer.BLOCKED and blocked.finish_reason == "content_filter"
    cut = _loopback_complete("skill-80-filtercut", msgs, {})
    head = " ".join(text.split(" ")[: len(text.split(" ")) // 2])
    assert cut.output == f"{head}\n\n{answer.CUT}" and cut.finish_reason == "content_filter"
    assert answer.side_extras(cut) == {"finish_reason": "content_filter"}


def test_an_empty_reply_is_a_genuine_empty_answer() -> None:
    msgs = _blocked_prompt("openai/skill-80-empty")
    comp = _loopback_complete("skill-80-empty", msgs, {})
    assert comp.output == "" and comp.finish_reason == "stop" and comp.tool_calls is None
    assert answer.side_extras(comp) == {}


# -- credentials: missing is exit 2 before any call, refused is auth (never 48 retries) -----------------------


def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.endswith(("_API_KEY", "_AUTH_TOKEN")):
            monkeypatch.delenv(var, raising=False)


def test_a_key_litellm_would_read_from_the_environment_is_checked_before_any_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from equiv.errors import InputError

    _no_keys(monkeypatch)
    s = Settings()
    specs = [client.resolve_model(m, s) for m in ("gpt-4o-mini", "gpt-4.1", "fake/skill-80")]
    with pytest.raises(InputError) as e:
        client.check_credentials(specs, s)
    assert "set OPENAI_API_KEY" in e.value.message and "gpt-4o-mini, gpt-4.1" in e.value.message
    assert "fake/skill-80" not in e.value.message
    monkeypatch.setenv("OPENAI_API_KEY", "   ")  # blank is missing too
    with pytest.raises(InputError):
        client.check_credentials(specs, s)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + "x" * 20)
    client.check_credentials(specs, s)


def test_configured_endpoints_and_keys_are_not_asked_for_an_environment_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from equiv.errors import InputError

    _no_keys(monkeypatch)
    s = Settings.model_validate(
        {
            "models": {
                "openai/house": {
                    "api_base": "http://127.0.0.1:9/v1",
                    "input_cost_per_mtok": 0,
                    "output_cost_per_mtok": 0,
                },
                "gpt-4o-mini": {"api_key_env": "EQUIV_TEST_MINI_KEY"},
            }
        }
    )
    client.check_credentials([client.resolve_model("openai/house", s)], s)
    monkeypatch.delenv("EQUIV_TEST_MINI_KEY", raising=False)
    with pytest.raises(InputError, match="EQUIV_TEST_MINI_KEY"):  # configured and unset: its own message
        client.check_credentials([client.resolve_model("gpt-4o-mini", s)], s)
    monkeypatch.setenv("EQUIV_TEST_MINI_KEY", "sk-" + "y" * 20)
    client.check_credentials([client.resolve_model("gpt-4o-mini", s)], s)


def test_either_gemini_variable_will_do(monkeypatch: pytest.MonkeyPatch) -> None:
    from equiv.errors import InputError

    _no_keys(monkeypatch)
    spec = client.resolve_model("gemini/gemini-2.5-flash", Settings())
    with pytest.raises(InputError, match=r"GEMINI_API_KEY|GOOGLE_API_KEY") as e:
        client.check_credentials([spec])
    assert " or " in e.value.message
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaSy" + "k" * 33)
    client.check_credentials([spec])


@pytest.mark.parametrize(
    "make",
    [
        lambda lm: lm.InternalServerError(
            "OpenAIException - Missing credentials. Please pass an `api_key`, or set the "
            "`OPENAI_API_KEY` environment variable.",
            llm_provider="openai",
            model="gpt-4o",
        ),
        lambda lm: lm.APIConnectionError(
            "Missing Gemini API key. Set the GEMINI_API_KEY or GOOGLE_API_KEY environment variable.",
            llm_provider="gemini",
            model="gemini/x",
        ),
        lambda lm: lm.BadRequestError(
            "API key not valid. Please pass a valid API key.", llm_provider="gemini", model="gemini/x"
        ),
        lambda lm: lm.APIError(
            500,
            "The api_key client option must be set either by passing api_key to the client or "
            "by setting the OPENAI_API_KEY environment variable",
            llm_provider="openai",
            model="m",
        ),
    ],
    ids=["openai-missing", "gemini-missing", "gemini-invalid", "sdk-option"],
)
def test_credential_errors_in_generic_classes_are_auth_not_transient(make: Any) -> None:
    err = client._classify(make(client._litellm()), None)
    assert err.kind == "auth", err.message


def test_a_transient_error_that_merely_quotes_headers_stays_transient() -> None:
    litellm = client._litellm()
    exc = litellm.InternalServerError(
        'The server had an error. Request headers: {"authorization": "Bearer sk-x", '
        '"x-api-key": "k"} see https://h/p?key=abc',
        llm_provider="openai",
        model="m",
    )
    assert client._classify(exc, None).kind == "transient"


def test_a_timeout_may_have_been_billed() -> None:
    litellm = client._litellm()
    err = client._classify(litellm.Timeout("read timed out", model="m", llm_provider="openai"), None)
    assert err.kind == "transient" and err.maybe_billed


# -- what a call is billed -------------------------------------------------------------------------------------


def test_reasoning_tokens_reported_apart_are_billed() -> None:
    apart = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 215,
        "completion_tokens_details": {"reasoning_tokens": 200},
    }
    inside = {
        "prompt_tokens": 10,
        "completion_tokens": 205,
        "total_tokens": 215,
        "completion_tokens_details": {"reasoning_tokens": 200},
    }
    no_total = {"prompt_tokens": 10, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 200}}
    assert client.billed_completion_tokens(apart) == 205
    assert client.billed_completion_tokens(inside) == 205  # OpenAI's way: already counted
    assert client.billed_completion_tokens(no_total) == 205
    assert client.billed_completion_tokens({"prompt_tokens": 1, "completion_tokens": 7}) == 7


def test_a_call_through_litellm_bills_reasoning_tokens_a_server_reports_apart() -> None:
    from equiv.testing.loopback import LoopbackServer

    with LoopbackServer(reasoning_tokens=300) as srv:
        spec = client.ModelSpec(
            name="m",
            call_model="openai/skill-80",
            api_base=srv.base_url,
            api_key_env=None,
            input_per_token=1e-6,
            output_per_token=1e-5,
            timeout_s=5,
        )
        comp = asyncio.run(client.acomplete(spec, MSG, {"temperature": 0, "max_tokens": 500}, None))
    _text, pt, ct = fake.reply("skill-80", MSG)
    assert comp.completion_tokens == ct + 300 and comp.cost_usd == pytest.approx(spec.cost(pt, ct + 300))


def test_output_limit_and_bounds() -> None:
    assert client.with_output_limit({"temperature": 0}, 64) == {"temperature": 0, "max_tokens": 64}
    assert client.with_output_limit({"max_completion_tokens": 9}, 64) == {"max_completion_tokens": 9}
    assert client.output_token_bound({"max_tokens": 10, "n": 4}, 64) == 40
    assert client.output_token_bound({}, 64) == 64
    msgs = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "é" * 100},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 10**6}},
            ],
        }
    ]
    bound = client.prompt_token_bound(msgs)
    assert 200 + client.MEDIA_PART_TOKENS <= bound < 10**5  # bytes of the text; an image is not its base64
