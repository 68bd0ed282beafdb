"""Process control for the managed node: is its pid alive, is a port taken, a file lock, stopping it, its log's tail.

Small OS-level helpers the launcher builds on; none of them knows about Elasticsearch's layout, so
each is testable with ordinary processes and files.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from hybridrank.errors import LauncherError

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 30


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file, or a note saying it does not exist."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat_file = Path(f"/proc/{pid}/stat")
    if stat_file.exists():
        with contextlib.suppress(OSError):
            state = stat_file.read_text().rsplit(")", 1)[1].split()[0]
            return state != "Z"
    return True


def live_pid(pidfile: Path) -> int | None:
    """The pid a pidfile names, if that process is alive."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM ``pid``, SIGKILL it after ``timeout_s``; ``LauncherError`` if it still lives after that."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        log.warning("Elasticsearch (pid %d) ignored SIGTERM for %.0f s; killing it", pid, timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            raise LauncherError(f"could not stop Elasticsearch (pid {pid})")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
