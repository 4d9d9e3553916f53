"""An EMR's MLLP listener for tests (the bridge's, and the platform's observability load),
written with the hl7 package's server on 127.0.0.1: it records every SIU message it receives
and answers as the test says (AA by default, AE, AR, or dropping the connection before
answering)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

import hl7
from hl7.mllp import HL7StreamReader, HL7StreamWriter, start_hl7_server

from clinic.devstack.components import free_port


@dataclass(frozen=True)
class Received:
    control_id: str
    trigger: str
    filler_id: str
    answer: str
    text: str


Decide = Callable[[hl7.Message, int], str]
"""(the message, how often this control id arrived before) -> AA, AE, AR or drop."""


class Peer:
    def __init__(self, decide: Decide | None = None) -> None:
        self.port = free_port()
        self.decide: Decide = decide or (lambda message, seen: "AA")
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.clients: set[asyncio.Task[None]] = set()

    def __enter__(self) -> Peer:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            start_hl7_server(self._client, "127.0.0.1", self.port, encoding="utf-8"), self.loop
        ).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        async def close() -> None:
            assert self.server is not None
            self.server.close()
            for task in self.clients:
                task.cancel()
            await asyncio.gather(*self.clients, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _client(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.clients.add(task)
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                msh = message.segment("MSH")
                control = str(msh[10])
                with self.lock:
                    seen = sum(1 for r in self.received if r.control_id == control)
                answer = self.decide(message, seen)
                with self.lock:
                    self.received.append(
                        Received(
                            control,
                            str(msh[9]).split("^")[1],
                            str(message.segment("SCH")[2]).split("^")[0],
                            answer,
                            str(message),
                        )
                    )
                if answer == "drop":
                    writer.close()
                    return
                writer.writemessage(message.create_ack(answer))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self.clients.discard(task)

    def acked(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.answer == "AA"]
