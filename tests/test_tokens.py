"""Token estimates against OpenAI's own tokenizer on a varied corpus of chat requests."""

from __future__ import annotations

import json
import random

from devstack.fake_llm import official_usage
from worker.providers import count_messages, count_text

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
        model = rng.choice(["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-3.5-turbo", "gpt-4-turbo"])
        items.append((messages, answer, model))
    return items


def relative_error(ours: int, truth: int) -> float:
    return abs(ours - truth) / truth


def test_estimates_within_two_percent_of_usage_on_240_requests() -> None:
    errors, seed_errors = [], []
    for messages, answer, model in corpus():
        usage = official_usage(messages, answer, model)
        ours = count_messages(messages, model) + count_text(answer, model)
        truth = usage["prompt_tokens"] + usage["completion_tokens"]
        errors.append(relative_error(ours, truth))
        # the seed's estimate: JSON.stringify(result).length / 4
        seed = -(-len(json.dumps({"messages": messages, "answer": answer})) // 4)
        seed_errors.append(relative_error(seed, truth))
    mean = sum(errors) / len(errors)
    worst = max(errors)
    seed_mean = sum(seed_errors) / len(seed_errors)
    print(
        f"\ntoken estimate over {len(errors)} requests: mean error {mean:.4%}, "
        f"worst {worst:.4%}; seed's length/4 estimate: mean error {seed_mean:.1%}"
    )
    assert len(errors) >= 200
    assert mean <= 0.02 and worst <= 0.02
    assert seed_mean > 0.05  # the corpus is hard enough to tell the two apart


def test_encoding_per_model_family() -> None:
    text = "Ünïcödé 🎉 tokens differ between encodings"
    assert count_text(text, "gpt-4o") != count_text(text, "gpt-3.5-turbo")
    assert count_text(text, "gpt-4o-2024-08-06") == count_text(text, "gpt-4.1-mini")
