"""Where the Command Center listens. Kept free of the web stack, so the supervisor
can check the port before starting anything without importing FastAPI."""

from __future__ import annotations

import socket
from pathlib import Path

from deskgate.paths import DataDir


class WebError(RuntimeError):
    pass


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a clear error naming the port."""
    # proto given explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # when the socket says it is TCP, and without it each keep-alive response waits
    # ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise WebError(f"the Command Center cannot listen on {host}:{port} ({exc.strerror}); choose another with --web-port") from None
    sock.listen(128)
    return sock


def web_url_file(data_dir: DataDir) -> Path:
    """Where the running Command Center writes the address it serves on."""
    return data_dir.root / "run" / "web.url"
