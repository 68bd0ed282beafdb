"""The own routes' callers, judged by a fake Elasticsearch security API at the transport.

Users: ``clicker`` may add documents to the events index, ``reader`` may not; ``ops`` has ``monitor``;
anything else is a wrong password. The fake counts its calls, so the cache shows.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from connector.credentials import Credentials
from connector.endpoint.app import Endpoint
from connector.endpoint.auth import AuthRejected, OwnRoutesAuth
from connector.endpoint.serving import RankerHolder
from connector.endpoint.upstream import Upstream
from hybridrank.config import AuthConfig, ClusterConfig, FeedbackConfig, Settings

EVENTS_INDEX = "hybridrank-events"
CHALLENGE = 'Basic realm="security", charset="UTF-8"'
PRIVILEGES = {"clicker": {"create_doc"}, "reader": set(), "ops": {"monitor"}}


def basic(user: str, password: str = "pw") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class FakeSecurity:
    """``_security/_authenticate`` and ``_has_privileges`` of a cluster with security on (or off)."""

    def __init__(self, *, security: bool = True) -> None:
        self.security = security
        self.calls: list[str] = []
        self.down = False
        self.broken = False  # answers 500 to everything

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.broken:
            return httpx.Response(500, json={"error": {"type": "exception", "reason": "boom"}, "status": 500})
        if not self.security:
            return httpx.Response(400, json={"error": f"no handler found for uri [{request.url.path}]"})
        user = self._user(request.headers.get("authorization"))
        if user is None:
            what = "missing authentication credentials" if "authorization" not in request.headers else \
                "unable to authenticate user [?]"
            reason = f"{what} for REST request [{request.url.path}]"
            return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE},
                                  json={"error": {"type": "security_exception", "reason": reason}, "status": 401})
        if request.url.path == "/_security/_authenticate":
            key = {"api_key": {"id": "k1", "name": "app"}} if request.headers["authorization"].startswith("ApiKey") \
                else {}
            return httpx.Response(200, json={"username": user, "roles": [f"{user}_role"], **key,
                                             "authentication_realm": {"name": "file1", "type": "file"}})
        asked = json.loads(request.content)
        wanted = set(asked.get("cluster", [])) | {p for item in asked.get("index", []) for p in item["privileges"]}
        names = {n for item in asked.get("index", []) for n in item["names"]}
        assert names <= {EVENTS_INDEX}
        return httpx.Response(200, json={"username": user, "has_all_requested": wanted <= PRIVILEGES[user]})

    @staticmethod
    def _user(header: str | None) -> str | None:
        if header == "ApiKey clicker-key":
            return "clicker"
        if not header or not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if user in PRIVILEGES and password == "pw" else None


@pytest.fixture()
def fake() -> FakeSecurity:
    return FakeSecurity()


def _endpoint(home: Path, fake: FakeSecurity, auth: AuthConfig | None = None) -> Iterator[TestClient]:
    # nothing listens at the cluster URL: events stay in the spool, read there by the tests
    settings = Settings(home=home, auth=auth or AuthConfig(), cluster=ClusterConfig(url="http://127.0.0.1:9"),
                        feedback=FeedbackConfig(flush_interval_s=60, max_post_bytes=4096, max_post_events=3))
    endpoint = Endpoint(settings, holder=RankerHolder({}), warm_up=False, upstream_transport=httpx.MockTransport(fake))
    with TestClient(endpoint.app, base_url="http://endpoint") as client:
        yield client


@pytest.fixture()
def client(tmp_path: Path, fake: FakeSecurity) -> Iterator[TestClient]:
    yield from _endpoint(tmp_path, fake)


def _spooled(home: Path) -> list[dict[str, Any]]:
    paths = sorted((home / "spool").glob("events-*"))
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


CLICK = {"request_id": "r1", "doc_id": "d1"}


def test_no_credentials_is_a_401_with_the_challenge(client: TestClient) -> None:
    for response in (client.post("/_hybridrank/events", json=CLICK), client.get("/_hybridrank/metrics")):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == CHALLENGE
        error = response.json()["error"]
        assert error["type"] == error["root_cause"][0]["type"] == "security_exception"
        assert error["reason"].startswith("missing authentication credentials for REST request [/_hybridrank/")
        assert error["header"] == {"WWW-Authenticate": [CHALLENGE]} and response.json()["status"] == 401


def test_a_wrong_password_is_a_401_naming_our_route(client: TestClient) -> None:
    response = client.post("/_hybridrank/events", json=CLICK, headers=basic("clicker", "wrong"))
    assert response.status_code == 401
    reason = response.json()["error"]["reason"]
    assert reason == "unable to authenticate user [?] for REST request [/_hybridrank/events]"


def test_without_the_privilege_is_a_403(client: TestClient, tmp_path: Path) -> None:
    response = client.post("/_hybridrank/events", json=CLICK, headers=basic("reader"))
    assert response.status_code == 403
    reason = response.json()["error"]["reason"]
    assert "is unauthorized for user [reader]" in reason and f"[{EVENTS_INDEX}]" in reason and "[create_doc]" in reason
    assert client.get("/_hybridrank/metrics", headers=basic("clicker")).status_code == 403  # monitor, not create_doc
    assert _spooled(tmp_path) == []


def test_an_allowed_caller_is_accepted_and_its_events_carry_it(client: TestClient, tmp_path: Path,
                                                                fake: FakeSecurity) -> None:
    response = client.post("/_hybridrank/events", json=CLICK, headers=basic("clicker"))
    assert response.status_code == 202 and response.json() == {"accepted": 1}
    assert [e["principal"] for e in _spooled(tmp_path)] == ["clicker"]
    assert client.get("/_hybridrank/metrics", headers=basic("ops")).status_code == 200
    assert client.get("/_hybridrank/health").status_code == 200  # open
    calls = len(fake.calls)
    assert client.post("/_hybridrank/events", json=CLICK, headers=basic("clicker")).status_code == 202
    assert len(fake.calls) == calls  # answered from the cache


def test_an_api_key_is_a_source_of_its_own(client: TestClient, tmp_path: Path) -> None:
    keyed = client.post("/_hybridrank/events", json=CLICK, headers={"authorization": "ApiKey clicker-key"})
    assert keyed.status_code == 202
    assert [e["principal"] for e in _spooled(tmp_path)] == ["clicker/api_key/k1"]


def test_a_principal_in_the_body_is_refused(client: TestClient) -> None:
    response = client.post("/_hybridrank/events", json={**CLICK, "principal": "someone-else"}, headers=basic("clicker"))
    assert response.status_code == 400 and "unknown field(s) ['principal']" in response.json()["error"]["reason"]


def test_security_off_leaves_the_routes_open_without_a_principal(tmp_path: Path) -> None:
    for client in _endpoint(tmp_path, FakeSecurity(security=False)):
        assert client.post("/_hybridrank/events", json=CLICK).status_code == 202
        assert client.get("/_hybridrank/metrics").status_code == 200
        assert "principal" not in _spooled(tmp_path)[0]


def test_own_routes_on_refuses_when_the_cluster_cannot_authenticate(tmp_path: Path) -> None:
    for client in _endpoint(tmp_path, FakeSecurity(security=False), AuthConfig(own_routes="on")):
        response = client.post("/_hybridrank/events", json=CLICK, headers=basic("clicker"))
        assert response.status_code == 503 and response.json()["error"]["type"] == "security_exception"


def test_bodies_over_the_limit_are_413_and_too_many_events_400(client: TestClient, tmp_path: Path) -> None:
    big = client.post("/_hybridrank/events", content=b"[" + b" " * 5000 + b"]", headers=basic("clicker"))
    assert big.status_code == 413 and big.json()["error"]["type"] == "content_too_long_exception"
    many = client.post("/_hybridrank/events", json=[CLICK] * 4, headers=basic("clicker"))
    assert many.status_code == 400 and "too many events" in many.json()["error"]["reason"]
    assert _spooled(tmp_path) == []


def _authorize(auth: OwnRoutesAuth, fake: FakeSecurity, headers: dict[str, str], route: str = "events") -> Any:
    async def run() -> Any:
        upstream = Upstream("http://es:9200", transport=httpx.MockTransport(fake))
        try:
            return await auth.authorize(upstream, Credentials.of(headers.items()), route, f"/_hybridrank/{route}")
        finally:
            await upstream.aclose()

    return asyncio.run(run())


def _auth(clock: Callable[[], float], **config: Any) -> OwnRoutesAuth:
    return OwnRoutesAuth(Settings(auth=AuthConfig(**config)), clock=clock)


def test_answers_expire_the_cache_is_bounded_and_an_outage_keeps_recent_answers(fake: FakeSecurity) -> None:
    now = [0.0]
    auth = _auth(lambda: now[0], cache_ttl_s=10, cache_size=2, outage_grace_s=100)
    assert _authorize(auth, fake, basic("clicker")).name == "clicker"
    first = len(fake.calls)  # detection + authenticate + privileges
    _authorize(auth, fake, basic("clicker"))
    assert len(fake.calls) == first
    now[0] = 11.0  # expired: asked again
    _authorize(auth, fake, basic("clicker"))
    assert len(fake.calls) > first
    for user in ("reader", "ops"):  # two more callers evict the oldest (size 2)
        with pytest.raises(AuthRejected):
            _authorize(auth, fake, basic(user))
    assert len(auth._cache) == 2
    fake.down = True
    now[0] = 50.0  # "ops" expired at 21, within the grace: its answer (403) holds while Elasticsearch is down
    with pytest.raises(AuthRejected) as refused:
        _authorize(auth, fake, basic("ops"))
    assert refused.value.status == 403
    with pytest.raises(Exception) as unknown:  # "clicker" was evicted: nobody can say, so 503
        _authorize(auth, fake, basic("clicker"))
    assert getattr(unknown.value, "status", None) == 503
    now[0] = 200.0  # beyond the grace: no longer
    with pytest.raises(Exception) as late:
        _authorize(auth, fake, basic("ops"))
    assert getattr(late.value, "status", None) == 503


def test_a_cluster_never_reached_is_presumed_secure_when_the_endpoint_has_credentials(fake: FakeSecurity) -> None:
    fake.down = True
    with_credentials = OwnRoutesAuth(Settings(cluster=ClusterConfig(username="svc", password="pw")))
    with pytest.raises(Exception) as caught:  # presumed on, and nobody can say who the caller is: 503
        _authorize(with_credentials, fake, basic("clicker"))
    assert getattr(caught.value, "status", None) == 503
    # without credentials of its own the endpoint could not store an event in a secured cluster
    assert _authorize(_auth(lambda: 0.0), fake, basic("clicker")) is None
    fake.down = False
    fake.security = False
    assert _authorize(_auth(lambda: 0.0), fake, {}) is None  # a cluster without security: open
    fake.broken = True
    with pytest.raises(AuthRejected) as refused:  # neither "who are you" nor "no such route": cannot tell
        _authorize(_auth(lambda: 0.0), fake, basic("clicker"))
    assert refused.value.status == 503
