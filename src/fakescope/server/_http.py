"""Running the app on uvicorn, with a deadline on request heads against slow-loris clients.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``), but nothing bounds how
long a client may take to *send* a request: a connection that trickles its request line and
headers a byte at a time (or sends nothing at all) is held open for as long as the client
likes, and a few hundred of them exhaust the server's file descriptors. h11's
``max_incomplete_event_size`` bounds the size of a request head, not its duration, and uvicorn
has no header-read timeout.

:class:`GuardedH11Protocol` is uvicorn's own h11 protocol plus one timer per connection, armed
while the server waits for bytes the client owes it and it is nobody else's job to wait for:

* from the moment the connection opens, and from the first byte of each later request, until
  that request's headers are complete (idle time between requests stays under uvicorn's
  keep-alive timeout, which the first byte of a request cancels);
* after a response was sent while the client still sends a body the app did not read.

The timer is not restarted by incoming bytes, so trickling does not extend it. When it fires
the connection is closed, with a ``408 Request Timeout`` when no request had started. A body
that the app reads (an upload) has its own deadlines in the upload handler, which answers 408
(see :func:`fakescope.server._uploads.timed_stream`). Subclassing keeps all of uvicorn's
request handling: only the connection's lifetime is watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from fakescope.server._settings import ServerSettings

__all__ = ["GuardedH11Protocol", "guarded_protocol", "run_server"]

log = logging.getLogger("fakescope.server")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline of :attr:`header_timeout_s` on request heads
    (and on the unread rest of a body after the response); see the module docstring."""

    header_timeout_s: float = 10.0
    _guard: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- the guard -------------------------------------------------------------------------
    def _owed(self) -> bool:
        """Whether the client owes bytes that only this guard waits for."""
        if self.transport is None or self.transport.is_closing():
            return False
        theirs = self.conn.their_state
        if theirs is h11.IDLE:
            # before the first request and once a request's first byte came, uvicorn's
            # keep-alive timer is off; between requests it is on and covers the idle time
            return self.timeout_keep_alive_task is None
        # the response is sent but the body keeps coming: nobody reads it any more
        return theirs is h11.SEND_BODY and self.conn.our_state is h11.DONE

    def _watch(self) -> None:
        if not self._owed():
            self._disarm()
        elif self._guard is None:
            self._guard = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None

    def _expired(self) -> None:
        self._guard = None
        if not self._owed():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        if self.conn.their_state is h11.IDLE:
            log.info("%s: no complete request within %g s: closed", client, self.header_timeout_s)
            self._send_408()
        else:
            log.info("%s: the rest of a request body took too long: closed", client)
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()

    def _send_408(self) -> None:
        """h11 lets a server answer before any request: exactly this case."""
        body = json.dumps({"detail": "the request was not received in time"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        with contextlib.suppress(h11.LocalProtocolError):
            data = self.conn.send(
                h11.Response(status_code=408, headers=headers, reason=b"Request Timeout")
            )
            data = (data or b"") + (self.conn.send(h11.Data(data=body)) or b"")
            data += self.conn.send(h11.EndOfMessage()) or b""
            self.transport.write(data)


def guarded_protocol(header_timeout_s: float) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` class with this deadline (uvicorn builds one protocol
    instance per connection from the class it is given)."""

    class Protocol(GuardedH11Protocol):
        pass

    Protocol.header_timeout_s = header_timeout_s
    return Protocol


def run_server(app: FastAPI, settings: ServerSettings) -> None:
    """Serve ``app`` on ``settings.host:port`` until interrupted (blocking)."""
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        server_header=False,
        http=guarded_protocol(settings.header_timeout_s),
        ws="none",  # the app has no WebSocket route
    )
