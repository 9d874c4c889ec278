"""The DLQ workbench: list, show, replay and purge dead-lettered messages.

SQS cannot annotate a moved message, so the reason comes from the
``dead_letters`` rows the worker wrote before the move, joined by the
original MessageId (``sourceMessageId`` on copies the fleet made, the
MessageId itself on SQS redrives). Reading the DLQ hides what was read for a
while (an operator's lease); what is not replayed or purged is released.

Replay never loses a message: the copy is sent to the work queue and the
lineage recorded before the DLQ message is deleted. Killed in between, the
worst case is a second copy, which the workflow ledger turns into a no-op.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from worker.observability.logging import sanitize
from worker.ops.shape import camel
from worker.queue import LaneName, QueueClient, Received, attributes_of
from worker.queue.keys import Keys, copy_group
from worker.store import Replay, Row, Store, record_replay
from worker.store.reads import call_history, dead_letter_reasons

__all__ = ["DlqEntry", "DlqFilter", "DlqGlance", "DlqWorkbench", "ReplayResult", "rest_of"]

ERROR_ATTRIBUTES = ("errorClass", "errorCode", "errorMessage")
READERS = 8  # concurrent short-poll readers per lane on a large DLQ
EMPTY_POLLS = 3  # a reader stops after this many empty short polls in a row


@dataclass(slots=True)
class DlqEntry:
    message: Received
    reason: dict[str, Any] | None = None

    @property
    def source_id(self) -> str:
        return self.message.identity

    @property
    def intent_type(self) -> str:
        found = self.reason.get("intent_type") if self.reason else None
        return str(found or self.message.attributes.get("intentType") or "-")

    @property
    def error_class(self) -> str:
        found = self.reason.get("error_class") if self.reason else None
        return str(found or self.message.attributes.get("errorClass") or "unknown")

    @property
    def error_code(self) -> str:
        found = self.reason.get("error_code") if self.reason else None
        return str(found or self.message.attributes.get("errorCode") or "unknown")

    @property
    def error_message(self) -> str:
        found = self.reason.get("error_message") if self.reason else None
        return str(found or self.message.attributes.get("errorMessage") or "(no reason recorded)")

    @property
    def user_id(self) -> str:
        return str(self.reason.get("user_id") or "-") if self.reason else "-"

    @property
    def workflow_id(self) -> str | None:
        return (
            str(self.reason["workflow_id"]) if self.reason and self.reason["workflow_id"] else None
        )

    @property
    def age_seconds(self) -> float:
        return max(0.0, time.time() - self.message.sent_at_ms / 1000)

    @property
    def replay_count(self) -> int:
        try:
            return int(self.message.attributes.get("replayCount", "0"))
        except ValueError:
            return 0

    def known_as(self, wanted: str, *, exact: bool = False) -> bool:
        """Is ``wanted`` this entry's DLQ, original or workflow id (or the start of one)?"""
        names = (self.message.message_id, self.source_id, self.workflow_id or "")
        if exact:
            return wanted in names
        return bool(wanted) and any(name.startswith(wanted) for name in names)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dlqMessageId": self.message.message_id,
            "sourceMessageId": self.source_id,
            "workflowId": self.workflow_id,
            "intentType": self.intent_type,
            "userId": self.user_id,
            "errorClass": self.error_class,
            "errorCode": self.error_code,
            "reason": self.error_message,
            "ageSeconds": round(self.age_seconds, 1),
            "replayCount": self.replay_count,
            "groupId": self.message.group_id,
            "receiveCount": self.reason.get("receive_count") if self.reason else None,
        }


@dataclass(frozen=True, slots=True)
class DlqFilter:
    intent: str | None = None
    error: str | None = None  # an error class or an error code
    user: str | None = None
    older_than: float | None = None  # seconds
    newer_than: float | None = None
    text: str | None = None
    ids: frozenset[str] = field(default_factory=frozenset)

    def matches(self, entry: DlqEntry) -> bool:
        checks = [
            not self.ids or bool({entry.message.message_id, entry.source_id} & self.ids),
            self.intent is None or entry.intent_type == self.intent,
            self.error is None or self.error in (entry.error_class, entry.error_code),
            self.user is None or entry.user_id == self.user,
            self.older_than is None or entry.age_seconds >= self.older_than,
            self.newer_than is None or entry.age_seconds <= self.newer_than,
            self.text is None or self.text.lower() in entry.error_message.lower(),
        ]
        return all(checks)


def rest_of(entries: Iterable[DlqEntry], picked: Iterable[DlqEntry]) -> list[DlqEntry]:
    """The entries that are not among ``picked`` (by DLQ message id: linear, not n²)."""
    taken = {e.message.message_id for e in picked}
    return [e for e in entries if e.message.message_id not in taken]


@dataclass(frozen=True, slots=True)
class DlqGlance:
    entries: list[DlqEntry]  # oldest first
    depth: int  # the messages the DLQs said were visible when the read began

    @property
    def missing(self) -> int:
        """How many fewer messages were read than the depths said (0: all of them)."""
        return max(0, self.depth - len(self.entries))


@dataclass(frozen=True, slots=True)
class ReplayResult:
    entry: DlqEntry
    new_message_id: str


class DlqWorkbench:
    def __init__(self, queue: QueueClient, store: Store) -> None:
        self._queue = queue
        self._store = store

    async def scan(self, *, hold_seconds: int = 120, limit: int = 100_000) -> list[DlqEntry]:
        """Read every DLQ message (hidden for ``hold_seconds``) and join its reason.

        Each lane's DLQ says first how many messages it holds; readers then take
        them with short polls (no wait) until that many distinct ids are in hand,
        one reader per hundred messages up to ``READERS``; only a poll that
        follows an empty one waits (a second: an empty short poll may have sampled
        too few of SQS's servers). Interrupted, whatever was read is released
        before the error leaves.
        """
        return (await self._gather(hold_seconds, limit, patient=True)).entries

    async def glance(self, *, hold_seconds: int = 30, limit: int = 100_000) -> DlqGlance:
        """What the depth-bounded short polls gather without ever waiting: a page's
        read, which may hold fewer messages than the depths said (``missing``).
        Commands that act on everything matching use ``scan``."""
        return await self._gather(hold_seconds, limit, patient=False)

    async def _gather(self, hold: int, limit: int, *, patient: bool) -> DlqGlance:
        found: dict[str, Received] = {}
        try:
            depths = await asyncio.gather(
                *(self._read_lane(lane, found, hold, limit, patient) for lane in self._queue.lanes)
            )
            entries = [DlqEntry(m) for m in found.values()]
            by_id = await dead_letter_reasons(self._store, [e.source_id for e in entries])
        except BaseException:
            await asyncio.shield(self._queue.dlq_release_all(list(found.values())))
            raise
        for entry in entries:
            entry.reason = by_id.get(entry.source_id)
        return DlqGlance(sorted(entries, key=lambda e: e.message.sent_at_ms), sum(depths))

    async def _read_lane(
        self, lane: LaneName, found: dict[str, Received], hold: int, limit: int, patient: bool
    ) -> int:
        target = (await self._queue.depth(dlq=True, lane=lane)).visible
        mine: set[str] = set()

        async def reader() -> None:
            empty = 0
            while len(mine) < target and len(found) < limit and empty < EMPTY_POLLS:
                batch = await self._queue.receive_dlq(
                    10, wait_seconds=min(empty, 1) if patient else 0, hold_seconds=hold,
                    lane=lane,
                )
                fresh = [m for m in batch if m.message_id not in found]
                empty = 0 if fresh else empty + 1
                for message in fresh:
                    found[message.message_id] = message
                    mine.add(message.message_id)

        if target:
            await asyncio.gather(*(reader() for _ in range(min(READERS, 1 + target // 100))))
        return target

    async def release(self, entries: Iterable[DlqEntry]) -> None:
        """Make read entries visible again now (batches of ten, in parallel)."""
        await self._queue.dlq_release_all([e.message for e in entries])

    async def history(self, entry: DlqEntry) -> list[Row]:
        """The workflow's LLM attempts, oldest first."""
        if entry.workflow_id is None:
            return []
        return await call_history(self._store, entry.workflow_id)

    async def details(self, entry: DlqEntry) -> dict[str, Any]:
        """One entry for `dlq show`: its listing, the body with secrets and content
        replaced by ``[redacted]``, its attributes, why it left and its LLM attempts."""
        try:
            body: Any = sanitize(json.loads(entry.message.body))
        except ValueError:
            body = sanitize(entry.message.body)
        history = await self.history(entry)
        return {
            **entry.as_dict(),
            "body": body,
            "attributes": entry.message.attributes,
            "deadLetterHistory": entry.reason.get("history") if entry.reason else None,
            "attempts": [
                {camel(k): (v.isoformat() if k == "created_at" else v) for k, v in row.items()}
                for row in history
            ],
        }

    async def replay(
        self,
        entries: list[DlqEntry],
        *,
        rate: float | None = None,
        on_done: Callable[[ReplayResult], None] | None = None,
    ) -> list[ReplayResult]:
        """Copy each entry back to the work queue, record lineage, then delete it."""
        results = []
        for entry in entries:
            started = time.monotonic()
            attrs = {  # a copy of the original, without the DLQ's annotations
                name: value
                for name, value in attributes_of(entry.message).items()
                if name not in ERROR_ATTRIBUTES and name != "replayCount"
            }
            attrs["replayCount"] = {
                "DataType": "Number",
                "StringValue": str(entry.replay_count + 1),
            }
            # the original group (a FIFO source keeps its order), a fresh deduplication id
            keys = Keys(copy_group(entry.message.group_id, attrs, self._queue.message_group))
            new_id = await self._queue.send(
                entry.message.body, attrs, lane=entry.message.lane, keys=keys
            )
            await record_replay(
                self._store,
                Replay(
                    entry.message.message_id,
                    entry.source_id,
                    "copy",
                    new_message_id=new_id,
                    workflow_id=entry.workflow_id,
                    replay_count=entry.replay_count + 1,
                ),
            )
            await self._queue.dlq_delete(entry.message)
            result = ReplayResult(entry, new_id)
            results.append(result)
            if on_done is not None:
                on_done(result)
            if rate:
                await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
        return results

    async def purge(self, entries: list[DlqEntry]) -> int:
        await self._queue.dlq_delete_all([e.message for e in entries])
        for entry in entries:
            await self._queue.payloads.discard(entry.message)  # an S3 pointer's object
        return len(entries)

    async def native_replay(
        self,
        *,
        rate: int | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll_seconds: float = 1.0,
        within: float = 600.0,
    ) -> dict[str, Any]:
        """SQS's StartMessageMoveTask back to the work queue; wait until it ends."""
        handle = await self._queue.start_move_task(rate)  # the standard lane's DLQ
        deadline = time.monotonic() + within
        task: dict[str, Any] = {"TaskHandle": handle, "Status": "RUNNING"}
        while time.monotonic() < deadline:
            tasks = await self._queue.move_tasks()
            task = next(
                (t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else task
            )
            if on_progress is not None:
                on_progress(task)
            if task.get("Status") in ("COMPLETED", "FAILED", "CANCELLED"):
                break
            await asyncio.sleep(poll_seconds)
        await record_replay(self._store, Replay(handle, "*", "native"))
        return task
