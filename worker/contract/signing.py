"""The fleet's signature on its own internal messages (``onlyfans_send``, ``campaign_batch``).

Producers cannot enqueue internal steps through any door; a body put straight on
the queue could still claim to be one. The fleet signs each internal message it
sends with an HMAC-SHA256 over the exact body, carried as the ``fleetSignature``
message attribute; the worker admits an internal type only with a valid
signature (docs/decisions.md). Copies the fleet makes (re-delays, fairness
requeues, DLQ replays) keep body and attributes, so they keep the signature.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_ATTRIBUTE", "derive_key", "sign", "verify"]

SIGNATURE_ATTRIBUTE = "fleetSignature"


def derive_key(secret: str | None, database_url: str | None, queue_name: str) -> bytes:
    """``FLEET_INTERNAL_KEY`` when set; else derived from what only the fleet holds
    (its database URL, with its password) and the queue name."""
    if secret:
        return secret.encode()
    material = f"fleet-internal-v1\x00{database_url or ''}\x00{queue_name}"
    return hashlib.sha256(material.encode()).digest()


def sign(body: str, key: bytes) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def verify(body: str, signature: str | None, key: bytes) -> bool:
    return bool(signature) and hmac.compare_digest(sign(body, key), str(signature))
