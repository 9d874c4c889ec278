"""Intents as producers write them: the agreement corpus and the seed-style workloads."""

from __future__ import annotations

import json
import uuid
from typing import Any

WID = "3f0c2a9e-4d1b-4c55-9a51-0c2f7b8e9d10"
TRACE = {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7"}


def _i(intent_type: str, data: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": intent_type, "userId": "u-1", **extra}
    if data is not None:
        body["data"] = data
    return body


def _sns(inner: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:intents",
        "Message": json.dumps(inner),
        "Timestamp": "2026-11-26T10:00:00.000Z",
        "SignatureVersion": "1",
    }


def _event(inner: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "WorkflowIntent",
        "source": "com.example.producer",
        "account": "000000000000",
        "time": "2026-11-26T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": inner,
    }


MG, CP, CV, CE = (
    "message_generation",
    "content_planning",
    "content_validation",
    "campaign_execution",
)

# (label, decoded body, expected: "ok" or the refusal code)
CORPUS: list[tuple[str, Any, str]] = [
    # --- valid: each spelling a producer uses ------------------------------------
    ("mg context", _i(MG, {"context": "fan renewed"}), "ok"),
    ("mg conversation", _i(MG, {"conversation": [{"role": "fan", "content": "hi"}]}), "ok"),
    ("mg messages text", _i(MG, {"messages": ["hey", "you there?"]}), "ok"),
    ("mg history objects", _i(MG, {"history": [{"from": "fan", "text": "hello"}]}), "ok"),
    ("mg lastMessage", _i(MG, {"lastMessage": "thanks!", "fanName": "Sam"}), "ok"),
    ("mg context object", _i(MG, {"context": {"event": "renewal", "months": 3}}), "ok"),
    ("mg only free keys", _i(MG, {"occasion": "birthday", "fan": {"name": "Ana"}}), "ok"),
    ("mg tone style", _i(MG, {"prompt": "say hi", "style": "playful", "maxLength": 200}), "ok"),
    (
        "mg send",
        _i(MG, {"context": "x"}, sendToOnlyFans=True, recipientId="fan-7", priority="high"),
        "ok",
    ),
    ("mg debounce", _i(MG, {"context": "x", "debounce": "replace"}), "ok"),
    ("mg trace", _i(MG, {"context": "x"}, traceContext=TRACE), "ok"),
    (
        "mg all seed fields",
        _i(
            MG,
            {"context": "x"},
            platforms=["onlyfans"],
            contentType="dm",
            requiresMultiPlatform=False,
            priority="low",
        ),
        "ok",
    ),
    ("mg force openai", _i(MG, {"context": "x"}, forceProvider="openai"), "ok"),
    ("mg secret key", _i(MG, {"context": "x", "apiKey": "sk-123"}), "ok"),
    ("mg 30 free keys", _i(MG, {f"k{n}": n for n in range(30)}), "ok"),
    ("cp goal", _i(CP, {"goal": "grow", "days": 14}), "ok"),
    ("cp goals list", _i(CP, {"goals": ["grow", "retain"], "audience": "fitness"}), "ok"),
    ("cp objective", _i(CP, {"objective": "launch", "durationDays": 5}), "ok"),
    ("cp topic persona", _i(CP, {"topic": "summer", "persona": "gamers"}), "ok"),
    ("cp empty data", _i(CP, {}), "ok"),
    ("cp no data", _i(CP), "ok"),
    ("cp free keys", _i(CP, {"season": "winter", "budget": 100}), "ok"),
    ("cv content", _i(CV, {"content": "new set tonight", "rules": ["no links"]}), "ok"),
    ("cv text", _i(CV, {"text": "hello"}), "ok"),
    ("cv caption policy", _i(CV, {"caption": "beach", "policy": "no nudity"}), "ok"),
    ("cv body guidelines", _i(CV, {"body": "b", "guidelines": ["brand voice"]}), "ok"),
    ("cv draft extra", _i(CV, {"draft": "d", "brand": {"voice": "warm"}}), "ok"),
    ("ce brief ids", _i(CE, {"brief": "sale", "recipients": ["f1", "f2"]}), "ok"),
    ("ce template fanIds", _i(CE, {"template": "hi {name}", "fanIds": ["f1"]}), "ok"),
    ("ce int ids", _i(CE, {"message": "m", "recipientIds": [1, 2, 3]}), "ok"),
    (
        "ce objects",
        _i(CE, {"brief": "b", "fans": [{"id": "f1", "name": "Ann"}, {"fanId": 7}]}),
        "ok",
    ),
    ("ce no brief", _i(CE, {"recipients": ["f1"], "offer": "20% off"}), "ok"),
    ("ce duplicates", _i(CE, {"brief": "b", "recipients": ["f1", "f1"]}), "ok"),
    ("envelope", {"version": 1, "workflowId": WID, "intent": _i(CV, {"text": "t"})}, "ok"),
    (
        "envelope enqueuedAt",
        {
            "version": 1,
            "workflowId": WID,
            "intent": _i(CP, {}),
            "enqueuedAt": "2026-11-26T10:00:00Z",
        },
        "ok",
    ),
    # --- edge: at the limits ------------------------------------------------------
    ("mg context at limit", _i(MG, {"context": "x" * 8000}), "ok"),
    ("mg context over", _i(MG, {"context": "x" * 8001}), "invalid_data"),
    ("mg 100 turns", _i(MG, {"messages": ["m"] * 100}), "ok"),
    ("mg 101 turns", _i(MG, {"messages": ["m"] * 101}), "invalid_data"),
    ("mg maxChars 20", _i(MG, {"context": "x", "maxChars": 20}), "ok"),
    ("mg maxChars 19", _i(MG, {"context": "x", "maxChars": 19}), "invalid_data"),
    ("cp days 31", _i(CP, {"goal": "g", "days": 31}), "ok"),
    ("cp days 32", _i(CP, {"goal": "g", "days": 32}), "invalid_data"),
    ("cv content at limit", _i(CV, {"content": "c" * 20_000}), "ok"),
    ("cv content over", _i(CV, {"content": "c" * 20_001}), "invalid_data"),
    (
        "ce 10000 recipients",
        _i(CE, {"brief": "b", "recipients": [f"f{n}" for n in range(10_000)]}),
        "ok",
    ),
    (
        "ce 10001 recipients",
        _i(CE, {"brief": "b", "recipients": [f"f{n}" for n in range(10_001)]}),
        "invalid_data",
    ),
    ("free key huge", _i(MG, {"context": "x", "notes": "n" * 50_000}), "ok"),
    ("userId 128", _i(CP, {}) | {"userId": "u" * 128}, "ok"),
    ("userId 129", _i(CP, {}) | {"userId": "u" * 129}, "schema"),
    # --- invalid ------------------------------------------------------------------
    ("mg empty data", _i(MG, {}), "invalid_data"),
    ("mg no data", _i(MG), "invalid_data"),
    ("mg context int", _i(MG, {"context": 5}), "invalid_data"),
    ("mg tone list", _i(MG, {"context": "x", "tone": ["a"]}), "invalid_data"),
    ("mg debounce merge", _i(MG, {"context": "x", "debounce": "merge"}), "invalid_data"),
    ("mg send no recipient", _i(MG, {"context": "x"}, sendToOnlyFans=True), "schema"),
    (
        "mg force azure unconfigured",
        _i(MG, {"context": "x"}, forceProvider="azure"),
        "provider_not_configured",
    ),
    ("cv no content", _i(CV, {"rules": ["r"]}), "invalid_data"),
    ("cv empty", _i(CV, {}), "invalid_data"),
    ("cv content empty string", _i(CV, {"content": ""}), "invalid_data"),
    ("cv content null", _i(CV, {"content": None}), "invalid_data"),
    ("ce no recipients", _i(CE, {"brief": "b"}), "invalid_data"),
    ("ce empty recipients", _i(CE, {"brief": "b", "recipients": []}), "invalid_data"),
    (
        "ce recipient object no id",
        _i(CE, {"brief": "b", "recipients": [{"name": "x"}]}),
        "invalid_data",
    ),
    ("ce recipients bools", _i(CE, {"brief": "b", "recipients": [True]}), "invalid_data"),
    ("ce recipients string", _i(CE, {"brief": "b", "recipients": "f1,f2"}), "invalid_data"),
    ("cp days string", _i(CP, {"goal": "g", "days": "7"}), "invalid_data"),
    ("cp goal empty", _i(CP, {"goal": ""}), "invalid_data"),
    ("data list", _i(CP, [1, 2]), "invalid_data"),
    ("data string", _i(CV, "content"), "invalid_data"),
    ("unknown type", _i("teleport", {}), "unknown_intent"),
    ("internal onlyfans_send", _i("onlyfans_send", {"sendId": 1}), "unknown_intent"),
    (
        "internal campaign_batch",
        _i(
            "campaign_batch",
            {"brief": "b", "recipients": ["f"], "campaignId": "c", "parentId": "c", "total": 1},
        ),
        "unknown_intent",
    ),
    (
        "envelope internal",
        {"version": 1, "workflowId": WID, "intent": _i("onlyfans_send", {"sendId": 1})},
        "unknown_intent",
    ),
    ("no type", {"userId": "u", "data": {}}, "schema"),
    ("no user", {"type": CP}, "schema"),
    ("typo top-level key", _i(MG, {"context": "x"}, recipent="fan-7"), "schema"),
    ("priority urgent", _i(CP, {}, priority="urgent"), "schema"),
    ("force anthropic", _i(CP, {}, forceProvider="anthropic"), "schema"),
    ("envelope bad uuid", {"version": 1, "workflowId": "nope", "intent": _i(CP, {})}, "schema"),
    ("envelope version 2", {"version": 2, "workflowId": WID, "intent": _i(CP, {})}, "schema"),
    ("envelope bad data", {"version": 1, "workflowId": WID, "intent": _i(CV, {})}, "invalid_data"),
    ("not an object", [1, 2], "not_object"),
    # --- other AWS routes ---------------------------------------------------------
    ("sns notification", _sns(_i(CV, {"text": "t"})), "ok"),
    ("sns envelope", _sns({"version": 1, "workflowId": WID, "intent": _i(CP, {})}), "ok"),
    ("sns bad data", _sns(_i(CE, {"brief": "b"})), "invalid_data"),
    ("sns not json", {"Type": "Notification", "MessageId": "m", "Message": "{nope"}, "not_json"),
    ("eventbridge event", _event(_i(MG, {"context": "x"})), "ok"),
    ("eventbridge internal", _event(_i("onlyfans_send", {"sendId": 1})), "unknown_intent"),
]


def seed_intents(per_type: int = 20) -> list[dict[str, Any]]:
    """Intents written the way the seed's producers write them: varied keys, the seed's
    optional fields, trace context."""
    out: list[dict[str, Any]] = []
    for n in range(per_type):
        common: dict[str, Any] = {
            "userId": f"creator-{n % 5}",
            "platforms": [["onlyfans"], ["onlyfans", "instagram"], ["fansly"]][n % 3],
            "priority": ["low", "medium", "high", "critical"][n % 4],
            "traceContext": {"traceId": uuid.uuid4().hex, "spanId": uuid.uuid4().hex[:16]},
        }
        if n % 2:
            common["contentType"] = ["dm", "post", "story"][n % 3]
            common["requiresMultiPlatform"] = n % 4 == 1
        out.append({"type": MG, **common, "data": _mg(n)})
        if n % 5 == 0:
            out[-1].update(sendToOnlyFans=True, recipientId=f"fan-{n}")
        out.append({"type": CP, **common, "data": _cp(n)})
        out.append({"type": CV, **common, "data": _cv(n)})
        out.append({"type": CE, **common, "data": _ce(n)})
    return out


def _mg(n: int) -> dict[str, Any]:
    shapes: list[dict[str, Any]] = [
        {"context": f"fan {n} renewed", "fanName": "Sam"},
        {
            "conversation": [
                {"role": "fan", "content": "miss you"},
                {"role": "creator", "content": "aw"},
            ]
        },
        {"messages": ["hey", "new pics?"], "tone": "flirty", "maxChars": 160},
        {"lastMessage": "thanks for the tip", "name": "Ana", "tipAmount": 20},
        {"occasion": "birthday", "fan": {"name": "Lee", "since": "2024"}},
    ]
    return shapes[n % len(shapes)]


def _cp(n: int) -> dict[str, Any]:
    shapes: list[dict[str, Any]] = [
        {"goal": "grow subscribers", "days": 7},
        {"goals": ["retain", "upsell"], "audience": "fitness fans"},
        {"objective": "launch a new set", "durationDays": 3, "budget": "low"},
        {"topic": "summer", "persona": "gamers", "notes": {"avoid": ["politics"]}},
        {},
    ]
    return shapes[n % len(shapes)]


def _cv(n: int) -> dict[str, Any]:
    shapes: list[dict[str, Any]] = [
        {"content": "New set tonight!", "rules": ["no links"]},
        {"text": "Link in bio", "policy": "no external links"},
        {"caption": "Beach day", "guidelines": ["brand voice"], "mediaType": "photo"},
        {"body": "Sale 50% off", "checks": ["pricing", "tone"]},
        {"draft": "See you soon", "brand": {"voice": "warm"}},
    ]
    return shapes[n % len(shapes)]


def _ce(n: int) -> dict[str, Any]:
    shapes: list[dict[str, Any]] = [
        {"brief": "weekend sale", "recipients": [f"f{n}-a", f"f{n}-b"]},
        {"template": "Hi {name}!", "fans": [{"id": f"f{n}-c", "name": "Ann"}, {"fanId": n}]},
        {"message": "thank you", "recipientIds": [f"f{n}-d"]},
        {"recipients": [{"recipientId": f"f{n}-e", "tier": "vip"}], "offer": "20% off"},
        {"goal": "reactivate", "fanIds": [f"f{n}-f", f"f{n}-g"], "segment": "lapsed"},
    ]
    return shapes[n % len(shapes)]
