"""``hybridrank serve`` in a child process, for faults a thread cannot take: SIGKILL, a full disk.

``EndpointProcess`` writes a config file, starts the endpoint on a free loopback port, waits for its
health route, and can kill it (SIGKILL: nothing flushed, nothing drained) or restart it over the same
spool. Its stderr is read into memory by a thread (a pipe, not a file: a test may forbid the child
every file write with ``RLIMIT_FSIZE``, the portable way to make its disk "full").
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from connector.endpoint.thread import free_port


def write_config(path: Path, *, home: Path, es_url: str, events_index: str, spool_dir: Path,
                 indices: dict[str, dict[str, Any]] | None = None, flush_interval_s: float = 0.2,
                 admission: dict[str, Any] | None = None, state: dict[str, Any] | None = None) -> Path:
    """A minimal TOML config (strings and numbers only) for a child endpoint."""
    lines = [f"home = {json.dumps(str(home))}", "compile_models = false", "[cluster]",
             f"url = {json.dumps(es_url)}", "[feedback]", f"events_index = {json.dumps(events_index)}",
             f"spool_dir = {json.dumps(str(spool_dir))}", f"flush_interval_s = {flush_interval_s}"]
    for section, table in (("admission", admission or {}), ("state", state or {}),
                           *((f"indices.{name}", spec) for name, spec in (indices or {}).items())):
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in table.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def shared_model_caches(home: Path, cache_home: Path) -> None:
    """Let a private ``home`` reuse the user's exported ONNX query model and document vectors."""
    home.mkdir(parents=True, exist_ok=True)
    for name in ("onnx", "embeddings"):
        (cache_home / name).mkdir(parents=True, exist_ok=True)
        if not (home / name).exists():
            (home / name).symlink_to(cache_home / name)


class EndpointProcess:
    """One ``hybridrank --config <config> serve`` child on a fixed port (kept across restarts)."""

    def __init__(self, config: Path, *, port: int | None = None) -> None:
        self.config = config
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.output: collections.deque[str] = collections.deque(maxlen=400)
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout_s: float = 180.0) -> EndpointProcess:
        command = [sys.executable, "-c", "from hybridrank.cli.main import main; main()",
                   "--config", str(self.config), "serve", "--port", str(self.port), "--log-level", "warning"]
        # the config file says everything: no environment override of its home or cluster
        overrides = ("HYBRIDRANK_HOME", "HYBRIDRANK_ES_URL", "ES_URL", "HYBRIDRANK_CONFIG")
        env = {**{k: v for k, v in os.environ.items() if k not in overrides}, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the endpoint exited with {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/_hybridrank/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"the endpoint did not answer within {timeout_s:.0f} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no lifespan shutdown, no drain, no final flush."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait (the lifespan drains and flushes); SIGKILL after 30 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def limit_file_size(self, max_bytes: int | None) -> None:
        """Set the child's ``RLIMIT_FSIZE`` (None: unlimited): writes past it fail with EFBIG, as on a full
        disk (Python ignores SIGXFSZ, so the write fails instead of killing the process)."""
        _, hard = resource.prlimit(self.pid, resource.RLIMIT_FSIZE)
        soft = hard if max_bytes is None else max_bytes  # the soft limit only: raising it back needs no privilege
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (soft, hard))

    def tail(self, lines: int = 40) -> str:
        return "\n".join(list(self.output)[-lines:])

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            self.output.append(raw.decode("utf-8", "replace").rstrip())
