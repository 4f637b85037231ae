"""One proxied connection: two directions, each a reader feeding a queue and a writer that
applies the proxy's current toxics to every chunk.

The reader stamps each chunk with the time it arrived, so latency is added once per chunk and
chunks in flight are delayed in parallel (a stream is not slowed by the sum of its chunks'
delays). The toxics are read again for every chunk, and a writer waiting on latency or bandwidth
wakes as soon as they change, so removing a toxic frees held data at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reliability.chaosproxy.httpmode import RequestEnd, RequestFramer, RequestStart, error_response
from reliability.chaosproxy.toxics import Toxic

READ_BYTES = 65536
QUEUE_CHUNKS = 64


@dataclass(frozen=True)
class Chunk:
    data: bytes
    arrived: float


EOF = Chunk(b"", -1.0)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as Toxiproxy's reset_peer does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Link:
    """A client connection and its upstream connection, with toxics applied in both directions.

    What it needs of its proxy comes in as arguments: ``toxics`` returns the proxy's toxics as
    they are now, ``http`` says whether the proxy frames HTTP requests, ``on_close`` is called
    once when the link closes (the proxy forgets it)."""

    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        clock: Callable[[], float],
        rng: random.Random,
        *,
        toxics: Callable[[], Sequence[Toxic]],
        http: bool = False,
        on_close: Callable[[Link], None] = lambda _link: None,
    ) -> None:
        self._toxics = toxics
        self._on_close = on_close
        self.client_reader, self.client_writer = client
        self.upstream_reader, self.upstream_writer = upstream
        self._clock = clock
        self._rng = rng
        self._rolls: dict[Toxic, bool] = {}
        self._passed: dict[Toxic, int] = {}  # bytes through each limit_data toxic on this connection
        self._timers: dict[Toxic, asyncio.TimerHandle] = {}
        self._changed = asyncio.Event()
        self._queues = {stream: asyncio.Queue[Chunk](QUEUE_CHUNKS) for stream in ("upstream", "downstream")}
        self._framer = RequestFramer() if http else None
        self._injecting: RequestStart | None = None
        self._injected_status = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = False

    # ------------------------------------------------------------------------------ toxics
    def affected(self, toxic: Toxic) -> bool:
        """Whether this connection is hit by ``toxic`` (rolled once per connection)."""
        hit = self._rolls.get(toxic)
        if hit is None:
            hit = self._rolls[toxic] = self._rng.random() < toxic.toxicity
        return hit

    def _active(self, stream: str) -> list[Toxic]:
        return [t for t in self._toxics() if t.stream == stream and self.affected(t)]

    def toxics_changed(self, removed: tuple[Toxic, ...] = ()) -> None:
        """Called by the proxy after any toxic change: wake writers, re-arm timeout timers."""
        self._changed.set()
        self._changed = asyncio.Event()
        if any(t.type == "timeout" and self._rolls.get(t) for t in removed):
            # Data was dropped while it held the connection: the stream is unusable, close it.
            self.close()
            return
        current = set(self._toxics())
        for toxic, timer in list(self._timers.items()):
            if toxic not in current:
                timer.cancel()
                del self._timers[toxic]
        loop = asyncio.get_running_loop()
        for toxic in self._toxics():
            # Rolled now even with timeout 0, so its removal knows whether it held this connection.
            if toxic.type == "timeout" and self.affected(toxic) and toxic not in self._timers \
                    and toxic.number("timeout") > 0:
                self._timers[toxic] = loop.call_later(toxic.number("timeout") / 1000.0, self.close)

    async def _hold(self, stream: str, kind: str, until: float) -> None:
        """Sleep until ``until``, or until no ``kind`` toxic is active on ``stream`` any more."""
        while self._has(stream, kind) and (left := until - self._clock()) > 0:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)

    def _latency_s(self, stream: str) -> float:
        total = 0.0
        for toxic in self._active(stream):
            if toxic.type == "latency":
                jitter = toxic.number("jitter")
                total += toxic.number("latency") + (self._rng.uniform(-jitter, jitter) if jitter else 0.0)
        return max(0.0, total) / 1000.0

    # ------------------------------------------------------------------------------ pumps
    async def run(self) -> None:
        self.toxics_changed()
        self._tasks = [
            asyncio.create_task(self._read("upstream", self.client_reader)),
            asyncio.create_task(self._read("downstream", self.upstream_reader)),
            asyncio.create_task(self._write("upstream", self.upstream_writer)),
            asyncio.create_task(self._write("downstream", self.client_writer)),
        ]
        try:
            await asyncio.gather(*self._tasks[2:], return_exceptions=True)
        finally:
            self.close()

    async def _read(self, stream: str, reader: asyncio.StreamReader) -> None:
        queue = self._queues[stream]
        try:
            while data := await reader.read(READ_BYTES):
                arrived = self._clock()
                if stream == "upstream" and self._framer is not None:
                    await self._frame(data, arrived)
                else:
                    await queue.put(Chunk(data, arrived))
        except (ConnectionError, OSError):
            pass
        await queue.put(EOF)

    async def _frame(self, data: bytes, arrived: float) -> None:
        """HTTP mode: forward requests, or answer them with an injected status."""
        assert self._framer is not None
        for event in self._framer.feed(data):
            if isinstance(event, RequestStart):
                self._injected_status = self._http_status(event.path)
                if self._injected_status:
                    self._injecting = event
                else:
                    await self._queues["upstream"].put(Chunk(event.head, arrived))
            elif isinstance(event, RequestEnd):
                if self._injecting is not None:
                    # Through the downstream queue, so it follows earlier responses and their toxics.
                    keep_alive = self._injecting.keep_alive and not self._injecting.upgrade
                    await self._queues["downstream"].put(Chunk(error_response(self._injected_status, keep_alive),
                                                               arrived))
                    self._injecting = None
                    if not keep_alive:
                        await self._queues["downstream"].put(EOF)
            elif self._injecting is None:
                await self._queues["upstream"].put(Chunk(event, arrived))

    def _http_status(self, path: str) -> int:
        for toxic in self._toxics():
            if toxic.type == "http_error" and path.startswith(str(toxic.attributes["path_prefix"])) \
                    and self._rng.random() < toxic.toxicity:
                return int(toxic.attributes["status"])
        return 0

    async def _write(self, stream: str, writer: asyncio.StreamWriter) -> None:
        queue = self._queues[stream]
        next_free = 0.0
        try:
            while (chunk := await queue.get()) is not EOF:
                active = self._active(stream)
                if any(t.type == "timeout" for t in active):
                    continue  # dropped on the floor, as Toxiproxy's timeout toxic does
                reset = next((t for t in active if t.type == "reset_peer"), None)
                if reset is not None:
                    await asyncio.sleep(reset.number("timeout") / 1000.0)
                    self.reset()
                    return
                due = chunk.arrived + self._latency_s(stream)
                await self._hold(stream, "latency", due)
                slicer = next((t for t in active if t.type == "slicer"), None)
                pieces = self._slices(chunk.data, slicer) if slicer is not None else [chunk.data]
                for index, piece in enumerate(pieces):
                    piece, limit_reached = self._limited(stream, piece)
                    next_free = await self._throttled(stream, writer, piece, next_free)
                    if limit_reached:
                        self.close()
                        return
                    if slicer is not None and index < len(pieces) - 1 and slicer.number("delay") > 0:
                        await asyncio.sleep(slicer.number("delay") / 1_000_000.0)
            delay_ms = sum(t.number("delay") for t in self._active(stream) if t.type == "slow_close")
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000.0)
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
        except (ConnectionError, OSError):
            self.close()

    def _slices(self, data: bytes, slicer: Toxic) -> list[bytes]:
        """``data`` cut into pieces of ``average_size`` +/- ``size_variation`` bytes (at least 1)."""
        average = int(slicer.number("average_size"))
        if average <= 0:
            return [data]
        variation = int(slicer.number("size_variation"))
        pieces = []
        start = 0
        while start < len(data):
            size = max(1, average + (self._rng.randint(-variation, variation) if variation else 0))
            pieces.append(data[start:start + size])
            start += size
        return pieces

    def _limited(self, stream: str, piece: bytes) -> tuple[bytes, bool]:
        """What of ``piece`` may still pass the stream's ``limit_data`` toxics, and whether the
        limit is reached with it (then the connection closes)."""
        reached = False
        for toxic in self._active(stream):
            if toxic.type != "limit_data":
                continue
            left = int(toxic.number("bytes")) - self._passed.get(toxic, 0)
            if len(piece) >= left:
                piece, reached = piece[:max(0, left)], True
            self._passed[toxic] = self._passed.get(toxic, 0) + len(piece)
        return piece, reached

    def _has(self, stream: str, kind: str) -> bool:
        return any(t.type == kind for t in self._active(stream))

    async def _throttled(self, stream: str, writer: asyncio.StreamWriter, data: bytes, next_free: float) -> float:
        """Write ``data`` at the slowest active bandwidth (KB/s; 0 = no limit); returns when the
        link is free again."""
        rates = [t.number("rate") for t in self._active(stream) if t.type == "bandwidth" and t.number("rate") > 0]
        if not rates:
            writer.write(data)
            await writer.drain()
            return next_free
        bytes_per_s = min(rates) * 1000.0
        step = max(1, int(bytes_per_s / 10))  # 100 ms worth at a time, as Toxiproxy
        for start in range(0, len(data), step):
            piece = data[start:start + step]
            free_at = max(next_free, self._clock())
            await self._hold(stream, "bandwidth", free_at)
            writer.write(piece)
            await writer.drain()
            next_free = max(free_at, self._clock()) + len(piece) / bytes_per_s
        return next_free

    # ------------------------------------------------------------------------------ closing
    def close(self) -> None:
        """Close both connections (FIN). Idempotent."""
        if self.closed:
            return
        self.closed = True
        for timer in self._timers.values():
            timer.cancel()
        for writer in (self.client_writer, self.upstream_writer):
            writer.close()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._on_close(self)

    def reset(self) -> None:
        """Reset both connections (RST) and close. Idempotent."""
        if not self.closed:
            _reset(self.client_writer)
            _reset(self.upstream_writer)
        self.close()
