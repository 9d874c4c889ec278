import json
import subprocess
import sys
import uuid
from pathlib import Path

import jsonschema
import pytest

from worker.contract import Envelope, Intent, encode_envelope, json_schema, parse_message
from worker.errors import EnqueueRefused, MalformedMessage

ROOT = Path(__file__).resolve().parents[1]
WID = "3f0c2a9e-4d1b-4c55-9a51-0c2f7b8e9d10"


def test_envelope_camel_case_on_the_wire() -> None:
    body = json.dumps(
        {
            "version": 1,
            "workflowId": WID,
            "enqueuedAt": "2026-11-26T10:00:00Z",
            "intent": {
                "type": "message_generation",
                "userId": "u-42",
                "data": {"context": "hi"},
                "sendToOnlyFans": True,
                "recipientId": "fan-7",
                "forceProvider": "azure",
                "priority": "high",
                "traceContext": {"traceId": "ab" * 16},
            },
        }
    )
    env = parse_message(body, "m-1")
    assert str(env.workflow_id) == WID
    assert env.intent.send_to_only_fans is True
    assert env.intent.recipient_id == "fan-7"
    assert env.trace_id == "ab" * 16
    wire = json.loads(encode_envelope(env, 262_144))
    assert wire["intent"]["sendToOnlyFans"] is True
    assert "send_to_only_fans" not in wire["intent"]


def test_bare_intent_takes_the_message_id() -> None:
    message_id = str(uuid.uuid4())
    env = parse_message(json.dumps({"type": "content_planning", "userId": "u"}), message_id)
    assert str(env.workflow_id) == message_id
    assert env.intent.priority == "medium"


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ("{nope", "not_json", "not JSON"),
        ("[1, 2]", "not_object", "JSON object"),
        (json.dumps({"type": "teleport", "userId": "u"}), "unknown_intent", "type"),
        (json.dumps({"type": "content_planning"}), "schema", "userId"),
        (json.dumps({"type": "content_planning", "userId": 5}), "schema", "userId"),
        (
            json.dumps(
                {
                    "version": 1,
                    "workflowId": "not-a-uuid",
                    "intent": {"type": "content_planning", "userId": "u"},
                }
            ),
            "schema",
            "workflowId",
        ),
        (
            json.dumps({"type": "content_planning", "userId": "u", "priority": "urgent"}),
            "schema",
            "priority",
        ),
        ("[" * 5000 + "]" * 5000, None, None),
        (
            json.dumps(
                {
                    "type": "content_planning",
                    "userId": "u",
                    "data": {
                        "a": [
                            [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
                        ]
                    },
                }
            ),
            "too_deep",
            "deeper",
        ),
    ],
)
def test_malformed_bodies_say_why(body: str, code: str | None, says: str | None) -> None:
    with pytest.raises(MalformedMessage) as err:
        parse_message(body, "m-1")
    if code:
        assert err.value.code == code
    if says:
        assert says in str(err.value)


def test_oversize_body_refused_at_enqueue() -> None:
    env = Envelope.wrap(
        Intent(type="content_validation", user_id="u", data={"context": "x" * 300_000})
    )
    with pytest.raises(EnqueueRefused, match="262144"):
        encode_envelope(env, 262_144)


def test_schema_accepts_both_shapes_and_rejects_unknown_types() -> None:
    schema = json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate({"type": "content_planning", "userId": "u"})
    validator.validate(
        {
            "version": 1,
            "workflowId": WID,
            "intent": {"type": "campaign_execution", "userId": "u", "data": {"fans": ["f"]}},
        }
    )
    assert not validator.is_valid({"type": "teleport", "userId": "u"})
    assert not validator.is_valid({"version": 1, "intent": {"type": "content_planning"}})


def test_published_schema_is_current() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker.cli",
            "schema",
            "--check",
            "--out",
            str(ROOT / "docs" / "contract.schema.json"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_admitted_data_is_validated_once_and_only_for_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker admits a message, then serves its data: the data model runs once.
    Data admitted as another type, or never admitted, is still validated."""
    from worker.contract import served
    from worker.contract.data import DATA_MODELS, CheckedData

    body = json.dumps({"type": "message_generation", "userId": "u1", "data": {"context": "hi"}})
    envelope = parse_message(body, WID)
    assert isinstance(envelope.intent.data, CheckedData)
    assert envelope.intent.model_dump(by_alias=True)["data"] == {"context": "hi"}
    runs: list[str] = []
    model = DATA_MODELS["message_generation"]
    original = model.model_validate

    def counted(data: object, **kwargs: object) -> object:
        runs.append("message_generation")
        return original(data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(model, "model_validate", counted)
    assert served("message_generation", envelope.intent.data).text("context") == "hi"
    assert runs == []  # admitted as this type: not validated again
    served("message_generation", {"context": "hi"})  # a plain dict: validated
    assert runs == ["message_generation"]
    with pytest.raises(MalformedMessage, match="maxChars"):  # admitted as another type
        served("message_generation", CheckedData({"maxChars": 1}, "content_validation"))


def test_an_unknown_key_ending_in_a_known_spelling_does_not_count_as_it() -> None:
    """``k_content`` is a producer's own key (context), not the field ``content``."""
    body = {"type": "content_validation", "userId": "u1", "data": {"k_content": "draft"}}
    with pytest.raises(MalformedMessage, match="content"):
        parse_message(json.dumps(body), WID)
    body["data"] = {"k_content": "draft", "content": "real"}
    assert parse_message(json.dumps(body), WID).intent.data["content"] == "real"
