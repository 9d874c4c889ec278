"""The token counter against the provider's own numbers.

The fixtures are published figures, not a second copy of our rule: OpenAI's
Cookbook guide "How to count tokens with tiktoken"
(openai-cookbook, examples/How_to_count_tokens_with_tiktoken.ipynb) prints, for
its example conversations, the ``prompt_tokens`` the OpenAI API reported per
model (section 6, and section 7 for a request carrying a tool definition).
Encodings come from OpenAI's ``tiktoken`` and its own model table
(``tiktoken.encoding_name_for_model``), never from the fleet's. ``tiktoken`` is
imported plainly: without it this module fails to import and the run fails.
"""

from __future__ import annotations

import json
import random

import pytest
import tiktoken

from devstack.fake_replies import official_usage, offline_tiktoken
from worker.providers import PRICES, count_messages, count_text, encoding_name

offline_tiktoken()  # tiktoken reads its (hash-checked) encoding files from a local cache

# Section 6: "let's verify the function above matches the OpenAI API response".
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on "
        "opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]
# "N prompt tokens counted by the OpenAI API." (gpt-4-0314: the guide's earlier revision)
API_PROMPT_TOKENS = {
    "gpt-3.5-turbo": 129,
    "gpt-4-0314": 129,
    "gpt-4-0613": 129,
    "gpt-4": 129,
    "gpt-4o": 124,
    "gpt-4o-mini": 124,
}

# Section 7: the same check for a request with one tool definition.
TOOL_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]
TOOL_NAME = "get_current_weather"
TOOL_DESCRIPTION = "Get the current weather in a given location"
TOOL_PROPERTIES = {  # name: (type, description, enum)
    "location": ("string", "The city and state, e.g. San Francisco, CA", ()),
    "unit": ("string", "The unit of temperature to return", ("celsius", "fahrenheit")),
}
API_PROMPT_TOKENS_WITH_TOOL = {
    "gpt-3.5-turbo": 105,
    "gpt-4": 105,
    "gpt-4o": 101,
    "gpt-4o-mini": 101,
}
# The guide's per-model constants for tool definitions: (function start, properties
# start, per property, enum start, per enum item, function end).
TOOL_CONSTANTS = {
    "gpt-3.5-turbo": (10, 3, 3, -3, 3, 12),
    "gpt-4": (10, 3, 3, -3, 3, 12),
    "gpt-4o": (7, 3, 3, -3, 3, 12),
    "gpt-4o-mini": (7, 3, 3, -3, 3, 12),
}


def tiktoken_count(text: str, model: str) -> int:
    return len(tiktoken.encoding_for_model(model).encode(text))


def tool_definition_tokens(model: str) -> int:
    """The tool's share of the prompt, as the guide counts it, with tiktoken alone."""
    func_init, prop_init, prop_key, enum_init, enum_item, func_end = TOOL_CONSTANTS[model]
    total = func_init + tiktoken_count(f"{TOOL_NAME}:{TOOL_DESCRIPTION}", model)
    total += prop_init
    for name, (kind, description, enum) in TOOL_PROPERTIES.items():
        total += prop_key
        if enum:
            total += enum_init + sum(enum_item + tiktoken_count(item, model) for item in enum)
        total += tiktoken_count(f"{name}:{kind}:{description}", model)
    return total + func_end


@pytest.mark.parametrize(("model", "reported"), sorted(API_PROMPT_TOKENS.items()))
def test_prompt_tokens_equal_what_the_openai_api_reported(model: str, reported: int) -> None:
    assert encoding_name(model) == tiktoken.encoding_name_for_model(model)
    assert count_messages(COOKBOOK_MESSAGES, model) == reported


@pytest.mark.parametrize(("model", "reported"), sorted(API_PROMPT_TOKENS_WITH_TOOL.items()))
def test_messages_beside_a_tool_equal_the_api_figure_less_the_tool(
    model: str, reported: int
) -> None:
    """The fleet sends no tools; its count of the messages must be the API's figure less
    the tool definition (counted by the guide's constants and tiktoken)."""
    assert count_messages(TOOL_MESSAGES, model) == reported - tool_definition_tokens(model)


@pytest.mark.parametrize(("model", "reported"), sorted(API_PROMPT_TOKENS.items()))
def test_fake_llm_usage_equals_what_the_openai_api_reported(model: str, reported: int) -> None:
    """The fake provider's ``usage`` (what cost tests see) is the API's, not ours."""
    assert official_usage(COOKBOOK_MESSAGES, "", model)["prompt_tokens"] == reported


def test_encoding_per_model_is_tiktokens_for_every_priced_model() -> None:
    models = sorted({model for _, model in PRICES})
    assert len(models) >= 6
    assert {m: encoding_name(m) for m in models} == {
        m: tiktoken.encoding_name_for_model(m) for m in models
    }


SNIPPETS = [
    "Hey! Thanks so much for subscribing, you made my day 💕",
    "Plan 7 days of posts for Instagram and OnlyFans around a beach photoshoot.",
    "¿Puedes escribir un mensaje cálido para un fan que renovó por tres meses?",
    "Schreibe eine kurze, freundliche Nachricht an einen treuen Abonnenten.",
    "日本のファンに向けて、週末の特別セールのお知らせを書いてください。",
    "Напиши короткое сообщение поклоннику с благодарностью за поддержку.",
    '{"goal": "grow subscribers", "days": 7, "platforms": ["onlyfans", "x"]}',
    "def handle(intent, ctx):\n    return {'ok': True}  # code in a prompt",
    "Price: $9.99/month — 20% off until 2026-12-01 23:59 UTC!!!",
    "   whitespace   and\ttabs\nand\n\nnewlines   ",
    "🔥🔥🔥 new set drops friday 🔥🔥🔥 #exclusive #weekend",
    "Validate: 'No explicit words in captions; no links to other platforms.'",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "ID fan-000123, tier=gold, lastSeen=1732611200, spend=$412.50",
    "<p>HTML <b>markup</b> &amp; entities &lt;3</p>",
]
SYSTEMS = [
    "You write direct messages from a creator to one fan.",
    "You are a content strategist for a creator on subscription platforms.",
    "You review a piece of creator content before it is published.",
]
MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-3.5-turbo", "gpt-4-turbo"]


def corpus(size: int = 240, seed: int = 11) -> list[tuple[list[dict[str, str]], str, str]]:
    rng = random.Random(seed)
    items = []
    for i in range(size):
        messages = [{"role": "system", "content": rng.choice(SYSTEMS)}]
        for turn in range(rng.randint(1, 4)):
            text = " ".join(rng.sample(SNIPPETS, rng.randint(1, 4)))
            role = "user" if turn % 2 == 0 else "assistant"
            messages.append({"role": role, "content": text})
        if i % 7 == 0:
            messages[-1]["name"] = "fan_7"
        answer = " ".join(rng.sample(SNIPPETS, rng.randint(1, 3)))
        items.append((messages, answer, rng.choice(MODELS)))
    return items


def test_text_counts_equal_tiktoken_on_a_multilingual_corpus() -> None:
    checked = 0
    for messages, answer, model in corpus():
        for text in [answer, *(v for m in messages for v in m.values())]:
            assert count_text(text, model) == tiktoken_count(text, model), (model, text)
            checked += 1
    assert checked > 1000


def test_estimates_equal_the_fake_providers_usage_and_beat_the_seeds() -> None:
    """On 240 varied requests the fleet's estimate is the fake's ``usage`` exactly; the
    seed's estimate (JSON.stringify(result).length / 4) is far off on the same corpus."""
    seed_errors = []
    for messages, answer, model in corpus():
        usage = official_usage(messages, answer, model)
        assert count_messages(messages, model) == usage["prompt_tokens"]
        assert count_text(answer, model) == usage["completion_tokens"]
        seed = -(-len(json.dumps({"messages": messages, "answer": answer})) // 4)
        seed_errors.append(abs(seed - usage["total_tokens"]) / usage["total_tokens"])
    seed_mean = sum(seed_errors) / len(seed_errors)
    print(
        f"\nseed's length/4 estimate over {len(seed_errors)} requests: mean error {seed_mean:.1%}"
    )
    assert seed_mean > 0.05


def test_encoding_per_model_family() -> None:
    text = "Ünïcödé 🎉 tokens differ between encodings"
    assert count_text(text, "gpt-4o") != count_text(text, "gpt-3.5-turbo")
    assert count_text(text, "gpt-4o-2024-08-06") == count_text(text, "gpt-4.1-mini")


def test_empty_text_is_zero_tokens_and_an_empty_message_costs_only_its_frame() -> None:
    assert count_text("", "gpt-4o") == 0
    assert count_messages([{"role": "user", "content": ""}], "gpt-4o") == 3 + 3 + 1  # role
