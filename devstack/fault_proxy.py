"""A TCP proxy that can cut a dependency off: PostgreSQL or SQS "down" on demand.

Workers connect through it; ``cut()`` drops every open connection and refuses
new ones until ``restore()``. It forwards to a TCP address or a Unix socket
(the embedded PostgreSQL listens on one), in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

__all__ = ["FaultProxy"]


class FaultProxy:
    def __init__(
        self, *, host: str | None = None, port: int | None = None, unix_path: str | None = None
    ) -> None:
        if not unix_path and not (host and port):
            raise ValueError("give host and port, or unix_path")
        self._target = (host, port, unix_path)
        self.port = 0
        self._down = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.cuts = 0

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server = loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cut(self) -> None:
        """Drop every connection now and refuse new ones."""
        self._down = True
        self.cuts += 1
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._drop_all)

    def restore(self) -> None:
        self._down = False

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:
            writer.transport.abort()
            return
        host, port, path = self._target
        try:
            if path:
                up_reader, up_writer = await asyncio.open_unix_connection(path)
            else:
                up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._writers.discard(writer)
        self._writers.discard(up_writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not reader.at_eof():
                data = await reader.read(65536)
                if not data or self._down:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()
