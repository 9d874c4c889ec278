"""Free-form ``data`` per intent type: the keys each type knows, in producers' spellings.

``data`` is ``Record<string, any>`` in the seed: producers choose their keys. Each
producer type has a table of *known fields*; a known field is accepted under any
of its spellings (the first one present wins; other spellings present are kept
as context). Every other key is context too: it reaches the prompt labelled,
bounded and sanitized (``worker.contract.served``). The tables below generate the
pydantic models, which generate the published JSON Schema, and the same models
run at the door and in the worker: one source of truth.

Limits (characters and counts) live here and only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "DATA_MODELS",
    "FIELDS",
    "LIMITS",
    "PRODUCER_TYPES",
    "RECIPIENT_IDS",
    "RECIPIENT_NAMES",
    "CheckedData",
    "Known",
    "ProducerType",
    "RecipientObject",
]

ProducerType = Literal[
    "content_planning", "message_generation", "content_validation", "campaign_execution"
]
PRODUCER_TYPES: tuple[str, ...] = (
    "content_planning",
    "message_generation",
    "content_validation",
    "campaign_execution",
)

LIMITS: dict[str, int] = {
    "text": 8_000,  # goal, context, brief (one text field)
    "content": 20_000,  # the content to validate
    "short": 500,  # tone, fan name, audience, one rule
    "turns": 100,  # messages in a conversation
    "turn": 4_000,  # characters of one conversation message
    "items": 50,  # goals, rules
    "recipients": 10_000,  # recipients of one campaign
    "extra_keys": 20,  # other keys rendered into the prompt (the rest are named only)
    "extra_chars": 1_000,  # characters of one other key's rendering
}


def _text(limit: int) -> Any:
    """Text: a known text field of another JSON type is refused, naming the field."""
    return Annotated[StrictStr, Field(min_length=1, max_length=limit)]


_Id = Annotated[StrictStr, Field(min_length=1, max_length=128)] | StrictInt
RECIPIENT_IDS = ("id", "fanId", "recipientId", "userId")
RECIPIENT_NAMES = ("name", "fanName", "displayName")


class RecipientObject(BaseModel):
    """A recipient given as an object: one id key, an optional name, anything else."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"anyOf": [{"required": [key]} for key in RECIPIENT_IDS]}
    )

    id: _Id | None = None
    fanId: _Id | None = None
    recipientId: _Id | None = None
    userId: _Id | None = None
    name: Annotated[StrictStr, Field(max_length=LIMITS["short"])] | None = None
    fanName: Annotated[StrictStr, Field(max_length=LIMITS["short"])] | None = None
    displayName: Annotated[StrictStr, Field(max_length=LIMITS["short"])] | None = None

    @model_validator(mode="after")
    def _has_id(self) -> RecipientObject:
        if all(getattr(self, key) is None for key in RECIPIENT_IDS):
            raise PydanticCustomError(
                "recipient_id_missing",
                "a recipient object needs one of id, fanId, recipientId, userId",
            )
        return self


_Turn = Annotated[StrictStr, Field(max_length=LIMITS["turn"])] | dict[str, Any]
_Conversation = Annotated[list[_Turn], Field(min_length=1, max_length=LIMITS["turns"])]
_Texts = Annotated[
    list[Annotated[StrictStr, Field(min_length=1, max_length=LIMITS["short"])]],
    Field(max_length=LIMITS["items"]),
]
_Recipient = _Id | RecipientObject

_KINDS: dict[str, Any] = {
    "text": _text(LIMITS["text"]),
    "content": _text(LIMITS["content"]),
    "short": _text(LIMITS["short"]),
    "goals": _text(LIMITS["text"]) | _Texts,
    "texts": _text(LIMITS["short"]) | _Texts,
    "context": _text(LIMITS["text"]) | _Conversation | dict[str, Any],
    "days": Annotated[StrictInt, Field(ge=1, le=31)],
    "max_chars": Annotated[StrictInt, Field(ge=20, le=2000)],
    "debounce": Literal["replace"],
    "recipients": Annotated[list[_Recipient], Field(min_length=1, max_length=LIMITS["recipients"])],
    "flag": StrictBool,
}


@dataclass(frozen=True, slots=True)
class Known:
    """One known field: its name in our code, its spellings on the wire, its kind."""

    name: str
    spellings: tuple[str, ...]
    kind: str
    required: bool = False
    doc: str = ""


_CACHE = Known("cache", ("cache",), "flag", doc="false opts out of the response cache")

FIELDS: dict[str, tuple[Known, ...]] = {
    "content_planning": (
        Known(
            "goal",
            ("goal", "goals", "objective", "objectives", "topic", "theme", "brief", "prompt"),
            "goals",
            doc="what the plan is for",
        ),
        Known("days", ("days", "durationDays", "horizonDays"), "days", doc="1-31, default 7"),
        Known("audience", ("audience", "targetAudience", "persona"), "short"),
        _CACHE,
    ),
    "message_generation": (
        Known(
            "context",
            ("context", "conversation", "messages", "history", "lastMessage", "prompt"),
            "context",
            doc="text, a list of messages ({role, content} or text), or an object",
        ),
        Known("fan_name", ("fanName", "fan_name", "recipientName", "name"), "short"),
        Known("tone", ("tone", "style", "mood"), "short", doc="default friendly"),
        Known("max_chars", ("maxChars", "maxLength", "max_chars"), "max_chars", doc="20-2000"),
        Known("debounce", ("debounce",), "debounce", doc='"replace" a pending send'),
        _CACHE,
    ),
    "content_validation": (
        Known(
            "content",
            ("content", "text", "caption", "body", "draft", "post", "message"),
            "content",
            required=True,
            doc="the content to validate",
        ),
        Known("rules", ("rules", "guidelines", "policies", "policy", "checks"), "texts"),
        _CACHE,
    ),
    "campaign_execution": (
        Known(
            "recipients",
            ("recipients", "recipientIds", "fans", "fanIds", "audienceIds"),
            "recipients",
            required=True,
            doc="ids, or objects with id/fanId/recipientId/userId and optional name",
        ),
        Known(
            "brief",
            ("brief", "template", "messageTemplate", "message", "goal", "prompt", "campaignBrief"),
            "text",
            doc="what to say; without one the message follows the other keys",
        ),
        _CACHE,
    ),
}


def _model(intent_type: str, fields: tuple[Known, ...]) -> type[BaseModel]:
    definitions: dict[str, Any] = {}
    for known in fields:
        for spelling in known.spellings:
            definitions[f"k_{spelling}"] = (
                _KINDS[known.kind],
                Field(None, alias=spelling, description=known.doc or None),
            )
    required = [k for k in fields if k.required]
    extra: dict[str, Any] = {}
    if required:
        extra["anyOf"] = [
            {"required": [spelling]} for known in required for spelling in known.spellings
        ]
    if intent_type == "message_generation":
        extra["minProperties"] = 1
    name = "".join(part.title() for part in intent_type.split("_")) + "Data"
    config = ConfigDict(extra="allow", populate_by_name=False, json_schema_extra=extra or None)
    validators: dict[str, Any] = {"_served": model_validator(mode="after")(_servable(intent_type))}
    return create_model(
        name,
        __config__=config,
        __validators__=validators,
        **definitions,
    )


def _servable(intent_type: str) -> Any:
    """The rule 'something the type can work from', naming the field that is missing."""
    fields = FIELDS[intent_type]
    spelling_of = {f"k_{s}": s for known in fields for s in known.spellings}

    def check(model: BaseModel) -> BaseModel:
        given = set((model.model_extra or {}).keys()) | {
            spelling_of[name]  # the fields set (an extra key named k_... is not one)
            for name in model.model_fields_set
            if name in spelling_of and getattr(model, name) is not None
        }
        for known in fields:
            if known.required and not given.intersection(known.spellings):
                also = ", ".join(known.spellings[1:])
                raise PydanticCustomError(
                    "data_field_missing",
                    "required: {doc} (also accepted as {also})",
                    {"field": known.spellings[0], "doc": known.doc, "also": also},
                )
        if intent_type == "message_generation" and not given:
            raise PydanticCustomError(
                "data_empty",
                "nothing to write from: give context (or conversation, messages, history) "
                "or any other key describing the message",
            )
        return model

    return check


DATA_MODELS: dict[str, type[BaseModel]] = {t: _model(t, FIELDS[t]) for t in PRODUCER_TYPES}


class CheckedData(dict[str, Any]):
    """``data`` the door has validated as ``intent_type``'s (``served`` then need not
    validate it again: the worker admits every message before its handler serves it)."""

    __slots__ = ("intent_type",)

    def __init__(self, data: dict[str, Any], intent_type: str) -> None:
        super().__init__(data)
        self.intent_type = intent_type
