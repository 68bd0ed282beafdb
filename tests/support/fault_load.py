"""Traffic for the fault tests and ``bench/bench_reliability.py``: searchers and a click poster, recording
every answer (status, when, how long), so a test can say what the app saw before, during and after a fault.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from connector.events.schema import click_event_id

QUERIES = ("cells protein expression", "DNA repair", "vitamin D deficiency", "immune response to infection",
           "cancer risk factors", "gene regulation in bacteria")
TRANSPORT_ERROR = 0  # the status recorded when no HTTP answer came (refused, reset, timed out)


@dataclass
class Answer:
    at: float  # monotonic time the request was sent
    seconds: float
    status: int
    body: str = ""


@dataclass
class Traffic:
    """Answers of one kind of request, thread-safe."""

    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def snapshot(self) -> list[Answer]:
        with self.lock:
            return list(self.answers)

    def by_status(self, since: float = 0.0, until: float = float("inf")) -> dict[str, int]:
        counts = collections.Counter(str(a.status) for a in self.snapshot() if since <= a.at < until)
        return dict(sorted(counts.items()))


class Load:
    """``searchers`` threads searching ``index`` and one thread posting clicks, until ``stop()``."""

    def __init__(self, url: Callable[[], str], index: str, *, searchers: int = 20, click_interval_s: float = 0.02,
                 timeout_s: float = 10.0, pause_s: float = 0.0) -> None:
        self.url = url  # read per request: an endpoint restarted on another port is followed
        self.index = index
        self.timeout_s = timeout_s
        self.pause_s = pause_s
        self.click_interval_s = click_interval_s
        self.searches = Traffic()
        self.clicks = Traffic()
        self.acknowledged: set[str] = set()  # event ids answered 202
        self.attempted: set[str] = set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._search, args=(n,), daemon=True) for n in range(searchers)]
        self._threads.append(threading.Thread(target=self._post_clicks, daemon=True))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_s + 5)

    def _timed(self, traffic: Traffic, client: httpx.Client, path: str, body: dict[str, object]
               ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = client.post(f"{self.url()}{path}", json=body)
        except httpx.HTTPError:
            traffic.add(Answer(started, time.monotonic() - started, TRANSPORT_ERROR))
            return None
        traffic.add(Answer(started, time.monotonic() - started, response.status_code,
                           response.text[:2000] if response.status_code >= 300 else ""))
        return response

    def _search(self, worker: int) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                text = QUERIES[(worker + n) % len(QUERIES)]
                body: dict[str, object] = {"query": {"match": {"text": text}}, "size": 5}
                self._timed(self.searches, client, f"/{self.index}/_search", body)
                if self.pause_s:
                    time.sleep(self.pause_s)

    def _post_clicks(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                request_id, doc_id = uuid.uuid4().hex, f"doc-{uuid.uuid4().hex[:6]}"
                event_id = click_event_id(request_id, doc_id)
                self.attempted.add(event_id)
                response = self._timed(self.clicks, client, "/_hybridrank/events",
                                       {"request_id": request_id, "doc_id": doc_id})
                if response is not None and response.status_code == 202:
                    self.acknowledged.add(event_id)
                time.sleep(self.click_interval_s)
