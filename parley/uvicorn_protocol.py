"""uvicorn's HTTP protocol with TCP_NODELAY set on every connection.

uvicorn 0.54 with `--workers N > 1` hands the listening socket to its workers in a way that
leaves asyncio unable to recognise it as TCP, so accepted connections keep Nagle's algorithm
and every reused keep-alive connection waits ~40 ms (uvicorn issue #3149). Passing this
class as `--http parley.uvicorn_protocol:NoDelayHttpProtocol` sets the option ourselves;
harmless with 1 worker.
"""

from __future__ import annotations

import asyncio
import socket

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # httptools missing (uvicorn without [standard]): the pure-Python parser
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]


class NoDelayHttpProtocol(_Base):
    """Disable Nagle on each TCP connection before serving it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
