"""A free TCP port on the loopback interface, for servers the tests start themselves."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now (the OS picked it; a server started next may take it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
