"""Putting messages on the lanes: envelopes (lane, attributes, signature, size limit,
group and deduplication ids), raw bodies, batches, DLQ moves.

``QueueClient`` inherits these. Each send's group and deduplication fields come from
``keys`` (the queue's kind decides: a FIFO queue takes both and no ``DelaySeconds``; a
standard one takes the group as its fair-queue tenant key, and delays).
"""

from __future__ import annotations

import contextlib
from typing import Any

from worker.aws import aws_call
from worker.contract import INTERNAL_TYPES, Envelope, message_attributes
from worker.contract.signing import SIGNATURE_ATTRIBUTE, sign
from worker.errors import EnqueueRefused, PayloadUnavailable, QueueUnavailable, WorkerError
from worker.observability.spans import producing
from worker.queue.keys import Keys, copy_group, envelope_keys, send_fields
from worker.queue.lanes import Lane
from worker.queue.messages import (
    SQS_MAX_ATTRIBUTES,
    Attributes,
    LaneName,
    Received,
    attributes_of,
    fit_attributes,
    sqs_safe,
)
from worker.queue.operators import QueueOperations
from worker.queue.payloads import Payloads, encode_body

__all__ = ["QueueSending"]

Item = tuple[str, Attributes, Keys]
Wired = tuple[LaneName, str, Attributes, Keys]


class QueueSending(QueueOperations):
    """Sends on the lanes of an open ``QueueClient``."""

    max_message_bytes: int
    message_group: str
    payloads: Payloads
    _signing_key: bytes

    def lane_for(self, priority: str, intent_type: str = "") -> LaneName:  # pragma: no cover
        raise NotImplementedError

    async def send_envelope(self, envelope: Envelope, delay: int = 0) -> str:
        """Put an intent on the queue: its lane, routing and trace attributes, its group
        and deduplication ids; refused (``EnqueueRefused``) over the queue's size limit.
        Returns the MessageId."""
        lane, body, attributes, keys = await self._wire(envelope)
        return await self.send(
            body, attributes, delay=delay, lane=lane, seed=_seed(envelope), keys=keys
        )

    async def send_envelopes(self, envelopes: list[Envelope]) -> list[str]:
        """``send_envelope`` for up to 10 envelopes, one batch call per lane among them."""
        wired = [await self._wire(envelope) for envelope in envelopes]
        ids = [""] * len(wired)
        for lane in dict.fromkeys(w[0] for w in wired):
            members = [i for i, w in enumerate(wired) if w[0] == lane]
            sent = await self.send_batch(
                [wired[i][1:] for i in members], lane, seeds=[_seed(envelopes[i]) for i in members]
            )
            for member, message_id in zip(members, sent, strict=True):
                ids[member] = message_id
        return ids

    async def _wire(self, envelope: Envelope) -> Wired:
        """Lane, body, attributes and keys; a body over the limit put in S3 (a pointer)."""
        body = encode_body(envelope, self.max_message_bytes, bucket=self.payloads.bucket)
        attributes = message_attributes(envelope)
        if envelope.intent.type in INTERNAL_TYPES:  # signed as the worker will read it
            attributes[SIGNATURE_ATTRIBUTE] = {
                "DataType": "String",
                "StringValue": sign(body, self._signing_key),
            }
        body, attributes = await self.payloads.place(body, attributes, self.max_message_bytes)
        lane = self.lane_for(envelope.intent.priority, envelope.intent.type)
        return lane, body, attributes, envelope_keys(envelope, self.message_group)

    async def send(
        self,
        body: str,
        attributes: Attributes,
        *,
        delay: int = 0,
        to_dlq: bool = False,
        lane: LaneName = "standard",
        seed: str | None = None,
        keys: Keys | None = None,
    ) -> str:
        """Send a body as it is (copies of received messages, replays, raw test bodies).
        Tracing on, the copy carries the current trace (or the one it carried already);
        ``seed`` is a producer's trace id for a new one. Without ``keys`` the group is
        the ``userId`` attribute's and a FIFO deduplication id is fresh."""
        target = self._of(lane)
        url = target.dlq_url if to_dlq else target.url
        fifo = target.dlq_fifo if to_dlq else target.fifo
        keys = keys or Keys(copy_group(None, attributes, self.message_group))
        fields = send_fields(keys, fifo=fifo, delay=delay)
        with producing(url.rsplit("/", 1)[-1], attributes, seed=seed):
            reply = await aws_call(
                "SendMessage",
                lambda: self._client.send_message(
                    QueueUrl=url, MessageBody=body, MessageAttributes=attributes, **fields
                ),
            )
        return str(reply["MessageId"])

    async def send_batch(
        self,
        items: list[Item],
        lane: LaneName = "standard",
        *,
        seeds: list[str | None] | None = None,
    ) -> list[str]:
        """Send up to 10 bodies in one call (a producer span each); raise if any failed."""
        results = await self._send_entries(items, lane, seeds)
        failed = [r for r in results if isinstance(r, QueueUnavailable)]
        if failed:
            raise QueueUnavailable(
                f"SendMessageBatch: {len(failed)} entries failed ({failed[0]})", code=failed[0].code
            )
        return [str(r) for r in results]

    async def send_envelopes_each(self, envelopes: list[Envelope]) -> list[str | WorkerError]:
        """``send_envelopes`` reporting per entry: a MessageId, or why that entry was not
        sent (too large; S3 or SQS refused it). Nothing raises for one entry's sake."""
        results: list[str | WorkerError] = []
        wired: list[tuple[int, Wired]] = []
        seeds = [_seed(envelope) for envelope in envelopes]
        for index, envelope in enumerate(envelopes):
            try:
                wired.append((index, await self._wire(envelope)))
            except (EnqueueRefused, PayloadUnavailable) as exc:
                results.append(exc)
                continue
            results.append("")
        for lane in dict.fromkeys(w[0] for _, w in wired):
            members = [(i, w) for i, w in wired if w[0] == lane]
            try:
                sent = await self._send_entries(
                    [w[1:] for _, w in members], lane, [seeds[i] for i, _ in members]
                )
            except QueueUnavailable as exc:
                sent = [exc] * len(members)
            for (index, _), outcome in zip(members, sent, strict=True):
                results[index] = outcome
        return results

    async def _send_entries(
        self, items: list[Item], lane: LaneName, seeds: list[str | None] | None = None
    ) -> list[str | QueueUnavailable]:
        target: Lane = self._of(lane)
        entries = [
            {
                "Id": str(i),
                "MessageBody": body,
                "MessageAttributes": attrs,
                **send_fields(keys, fifo=target.fifo),
            }
            for i, (body, attrs, keys) in enumerate(items)
        ]
        with contextlib.ExitStack() as spans:
            for i, (_, attrs, _) in enumerate(items):
                seed = seeds[i] if seeds else None
                spans.enter_context(producing(target.queue_name, attrs, seed=seed))
            reply = await aws_call(
                "SendMessageBatch",
                lambda: self._client.send_message_batch(QueueUrl=target.url, Entries=entries),
            )
        return _per_entry(reply, len(items))

    async def move_to_dlq(self, message: Received, reason: dict[str, str]) -> None:
        """Copy to the lane's DLQ with error attributes (its group kept), then delete it."""
        attrs = attributes_of(message)
        for name, value in reason.items():
            attrs[name] = {"DataType": "String", "StringValue": sqs_safe(value[:256]) or "-"}
        # room for the traceparent the send adds when tracing is on
        room = SQS_MAX_ATTRIBUTES - (0 if "traceparent" in attrs else 1)
        attrs = fit_attributes(attrs, room)
        keys = Keys(copy_group(message.group_id, attrs, self.message_group), message.message_id)
        await self.send(message.body or " ", attrs, to_dlq=True, lane=message.lane, keys=keys)
        await self.delete(message)

    async def delete(self, message: Received) -> None:  # pragma: no cover - QueueClient's
        raise NotImplementedError


def _per_entry(reply: dict[str, Any], count: int) -> list[str | QueueUnavailable]:
    out: list[str | QueueUnavailable] = [
        QueueUnavailable("SendMessageBatch: no answer for this entry")
    ] * count
    for ok in reply.get("Successful", []):
        out[int(ok["Id"])] = str(ok["MessageId"])
    for bad in reply.get("Failed", []):
        code = str(bad.get("Code") or "aws")
        out[int(bad["Id"])] = QueueUnavailable(f"{code}: {bad.get('Message')}", code=code)
    return out


def _seed(envelope: Envelope) -> str | None:
    """A producer's own trace id (the seed's ``traceContext``), to start its trace with."""
    given = envelope.intent.trace_context
    return given.trace_id if given is not None else None
