"""The message contract, v1: models, admission (door and worker alike), JSON Schema.

``envelope``  the envelope and intent models, the wire body and its attributes
``data``      free-form ``data`` per producer type: known keys, spellings, limits
``served``    ``data`` normalized for a handler, other keys as bounded context
``door``      ``admit``/``parse_message``: the one check the door and worker run
``signing``   the fleet's signature on its own internal messages
"""

from worker.contract.data import FIELDS, LIMITS, PRODUCER_TYPES, Known
from worker.contract.door import MAX_JSON_DEPTH, admit, json_schema, parse_message
from worker.contract.envelope import (
    INTENT_TYPES,
    INTERNAL_TYPES,
    Envelope,
    Intent,
    IntentType,
    Priority,
    TraceContext,
    encode_envelope,
    message_attributes,
)
from worker.contract.served import Recipient, Served, served

__all__ = [
    "FIELDS",
    "INTENT_TYPES",
    "INTERNAL_TYPES",
    "LIMITS",
    "MAX_JSON_DEPTH",
    "PRODUCER_TYPES",
    "Envelope",
    "Intent",
    "IntentType",
    "Known",
    "Priority",
    "Recipient",
    "Served",
    "TraceContext",
    "admit",
    "encode_envelope",
    "json_schema",
    "message_attributes",
    "parse_message",
    "served",
]
