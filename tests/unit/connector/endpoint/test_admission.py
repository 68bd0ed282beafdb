"""Bounded admission: slots, a FIFO queue, and Elasticsearch's own 429 beyond them."""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import Receive, Scope, Send

from connector.endpoint.admission import Admission
from hybridrank.config import AdmissionConfig


class Gate:
    """An ASGI app whose requests wait until ``open`` is set; it records the order they started in."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.started.append(scope["path"])
        if scope["path"] != "/_hybridrank/health":
            await self.open.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def _client(app: Admission) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://endpoint")


async def _until(condition: object) -> None:
    for _ in range(200):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


def test_beyond_the_slots_and_the_queue_requests_are_shed_with_an_elasticsearch_429() -> None:
    async def scenario() -> None:
        gate = Gate()
        shed: list[str] = []
        admission = Admission(gate, limits=AdmissionConfig(max_in_flight=2, max_queued=1, queue_timeout_s=30,
                                                           retry_after_s=3), on_shed=shed.append)
        async with _client(admission) as client:
            held = [asyncio.create_task(client.post(f"/i/_search?n={n}")) for n in range(2)]
            await _until(lambda: admission.in_flight == 2)
            queued = asyncio.create_task(client.get("/queued/_search"))
            await _until(lambda: admission.queued == 1)
            rejected = await client.post("/i/_search", headers={"accept": "application/vnd.elasticsearch+json; "
                                                                          "compatible-with=9"})
            assert rejected.status_code == 429
            assert rejected.headers["retry-after"] == "3"
            assert rejected.headers["x-elastic-product"] == "Elasticsearch"
            assert rejected.headers["content-type"] == "application/vnd.elasticsearch+json;compatible-with=9"
            error = rejected.json()["error"]
            assert rejected.json()["status"] == 429
            assert error["type"] == error["root_cause"][0]["type"] == "es_rejected_execution_exception"
            assert "rejected execution of request [POST /i/_search]" in error["reason"]
            assert "queue capacity = 1" in error["reason"]
            health = await client.get("/_hybridrank/health")  # never shed
            assert health.status_code == 200
            assert "/queued/_search" not in gate.started  # waits for a slot
            gate.open.set()
            assert [r.status_code for r in await asyncio.gather(*held, queued)] == [200, 200, 200]
            assert gate.started[-1] == "/queued/_search"
        assert shed == ["queue_full"] and admission.in_flight == 0 and admission.queued == 0

    asyncio.run(scenario())


def test_a_request_that_waits_too_long_for_a_slot_is_shed() -> None:
    async def scenario() -> None:
        gate = Gate()
        admission = Admission(gate, limits=AdmissionConfig(max_in_flight=1, max_queued=5, queue_timeout_s=0.05))
        async with _client(admission) as client:
            held = asyncio.create_task(client.post("/i/_search"))
            await _until(lambda: admission.in_flight == 1)
            late = await client.post("/i/_search")
            assert late.status_code == 429 and "queue timeout" in late.json()["error"]["reason"]
            assert admission.queued == 0
            gate.open.set()
            assert (await held).status_code == 200
            assert (await client.post("/i/_search")).status_code == 200  # the slot came back
        assert admission.in_flight == 0

    asyncio.run(scenario())


def test_admission_off_admits_everything() -> None:
    async def scenario() -> None:
        gate = Gate()
        gate.open.set()
        admission = Admission(gate, limits=AdmissionConfig(enabled=False, max_in_flight=1, max_queued=0))
        async with _client(admission) as client:
            answers = await asyncio.gather(*(client.post("/i/_search") for _ in range(5)))
        assert [a.status_code for a in answers] == [200] * 5

    asyncio.run(scenario())
