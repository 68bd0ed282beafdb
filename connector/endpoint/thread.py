"""The endpoint in a background thread of this process (uvicorn), for benchmarks, demos and tests."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from connector.endpoint.app import Endpoint


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """``with ServerThread(endpoint) as server: ... server.url ...``; exit drains the event log."""

    def __init__(self, endpoint: Endpoint, *, port: int | None = None, start_timeout_s: float = 120.0) -> None:
        self.port = port or free_port()
        self.start_timeout_s = start_timeout_s
        self.server = uvicorn.Server(uvicorn.Config(endpoint.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the endpoint did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
