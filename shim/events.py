"""Task events to containerd: forwarded over ttrpc to $TTRPC_ADDRESS, in the
order they were published (a task's start always reaches containerd before
its exit), retried a few times when containerd is briefly unreachable."""
from __future__ import annotations

import asyncio
import time

import structlog
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ringfence.proto import typeurl
from ringfence.proto.containerd.services.ttrpc.events.v1 import events_pb2

from .ttrpc import Client, TtrpcError

log = structlog.get_logger("ringfence.shim.events")

SERVICE = "containerd.services.events.ttrpc.v1.Events"
ATTEMPTS = 5
CALL_TIMEOUT = 5.0


def timestamp(seconds: float | None = None) -> Timestamp:
    """A protobuf Timestamp of `seconds` since the epoch (default: now)."""
    ts = Timestamp()
    ts.FromNanoseconds(int((time.time() if seconds is None else seconds) * 1e9))
    return ts


class Publisher:
    """An ordered queue of events and the task that forwards them."""

    def __init__(self, address: str, namespace: str):
        self.address = address
        self.namespace = namespace
        self._queue: asyncio.Queue = asyncio.Queue()
        self._client: Client | None = None
        self._task: asyncio.Task | None = None

    def publish(self, topic: str, event: Message) -> None:
        """Queue `event` under `topic` (e.g. "/tasks/exit"); never blocks."""
        envelope = events_pb2.Envelope(timestamp=timestamp(), namespace=self.namespace,
                                       topic=topic, event=typeurl.pack(event))
        self._queue.put_nowait(events_pb2.ForwardRequest(envelope=envelope))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._forward_all())

    async def flush(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) until every queued event is sent."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except asyncio.TimeoutError:
            log.warning("events not delivered", pending=self._queue.qsize())

    async def close(self) -> None:
        """Stop forwarding and drop the connection."""
        if self._task is not None:
            self._task.cancel()
        if self._client is not None:
            await self._client.close()

    async def _forward_all(self) -> None:
        while True:
            request = await self._queue.get()
            try:
                await self._forward(request)
            finally:
                self._queue.task_done()

    async def _forward(self, request) -> None:
        topic = request.envelope.topic
        for attempt in range(1, ATTEMPTS + 1):
            try:
                if self._client is None or self._client.closed:
                    self._client = await Client.connect(self.address, timeout=CALL_TIMEOUT)
                await self._client.call(SERVICE, "Forward", request, timeout=CALL_TIMEOUT,
                                        metadata={"containerd-namespace-ttrpc": self.namespace})
                log.debug("event published", topic=topic)
                return
            except (OSError, TtrpcError, asyncio.TimeoutError) as err:
                log.warning("publishing an event failed", topic=topic, attempt=attempt, error=str(err))
                if self._client is not None:
                    await self._client.close()
                    self._client = None
                await asyncio.sleep(0.2 * attempt)
        log.error("event dropped", topic=topic)
