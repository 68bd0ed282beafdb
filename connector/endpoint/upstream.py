"""The async client to the real Elasticsearch behind the endpoint: pooled, short connect timeout.

``Upstream.forward`` relays one request verbatim and returns the streaming response;
``Upstream.msearch`` runs many searches in one round trip and returns the parsed responses.
A cluster that does not answer raises ``ClusterUnavailable`` promptly (connect timeout ~1 s), so the
app gets an Elasticsearch-shaped 503 instead of a hang.

The two requests of every reranked search (``msearch``, ``mget``) go through aiohttp, whose HTTP parser
is C: measured here against the same node, httpx (pure-Python h11 underneath) spent ~3 ms of CPU per
``_msearch`` of two 100-hit legs, aiohttp ~1.3 ms, and the endpoint's CPU per search is what bounds its
throughput on cores it shares with Elasticsearch. Pass-through relaying (streamed) and the endpoint's
own calls stay on httpx; so does everything when a test hands in an httpx ``transport`` (faking
Elasticsearch at the transport).

Everything sent here is sent on an app's behalf, so the upstream has no identity of its own: a
request carries the app's credential headers (``connector.credentials``) or none, never the
endpoint's configured ones (those serve the endpoint's own work: events, models, the CLI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import aiohttp
import httpx
import orjson

from connector.credentials import Credentials, without_userinfo
from connector.endpoint.wire import dumps, forwardable_headers, join_ndjson, upstream_media_types
from hybridrank.errors import ClusterError, ClusterUnavailable

# Headers the app sent that we do not copy onto the legs we build ourselves.
_LEG_DROP = ("content-length", "content-type", "accept", "accept-encoding")
# Elasticsearch refused the caller's credentials (401) or their privileges (403) for a whole request.
REFUSED = frozenset({401, 403})
# Our own searches are read here, not relayed: compression would cost Elasticsearch and us CPU for
# nothing on a local link (httpx asks for gzip by default; a py-spy profile under load showed it).
_UNCOMPRESSED = ("accept-encoding", "identity")


class Upstream:
    """One pooled ``httpx.AsyncClient`` to the cluster URL."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float = 1.0,
        read_timeout_s: float = 30.0,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = without_userinfo(base_url).rstrip("/")  # user:password@ would be an identity of our own
        self._limits = (max_connections, connect_timeout_s, read_timeout_s)
        self._fast = transport is None  # the hot path on aiohttp (see the module docstring)
        self._session: aiohttp.ClientSession | None = None  # made in the running loop, on first use
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=connect_timeout_s * 5),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
            follow_redirects=False,
            # one client serves every app: a cookie one answer set must not ride on the next app's request
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.client.aclose()

    def _aiohttp(self) -> aiohttp.ClientSession:
        if self._session is None:
            limit, connect_s, read_s = self._limits
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limit, limit_per_host=limit),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_s, sock_read=read_s,
                                              connect=connect_s * 5),  # connect: a free pooled connection too
                cookie_jar=aiohttp.DummyCookieJar(),  # one client serves every app: no cookie rides along
                auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def _post(self, path: str, content: bytes, headers: list[tuple[str, str]],
                    params: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """POST ``content`` to ``path``: (status, body). Exactly ``headers`` go along (and Host, Content-Length)."""
        if not self._fast:
            try:
                response = await self.client.post(path, content=content, headers=headers, params=dict(params or {}))
            except httpx.TransportError as exc:
                raise _unavailable(self.base_url, exc) from exc
            return response.status_code, response.content
        try:
            async with self._aiohttp().post(self.base_url + path, data=content, headers=headers,
                                            params=dict(params) if params else None,
                                            allow_redirects=False) as answer:
                return answer.status, await answer.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unavailable(self.base_url, exc) from exc

    async def forward(
        self,
        method: str,
        path: str,
        query: bytes,
        headers: Sequence[tuple[str, str]],
        content: bytes | AsyncIterator[bytes] | None,
    ) -> httpx.Response:
        """Send one request as the app sent it; the response is streamed (call ``aclose`` on it)."""
        pairs = forwardable_headers(headers)
        url = httpx.URL(path=path, query=query) if query else httpx.URL(path=path)  # no stray "?" for ES to see
        request = self.client.build_request(method, url, headers=pairs, content=content)
        if not any(k.lower() == "accept-encoding" for k, _ in pairs):
            # httpx adds its own default; an app that asked for no compression must get none
            del request.headers["accept-encoding"]
        try:
            return await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _unavailable(self.base_url, exc) from exc

    async def msearch(
        self,
        searches: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
        *,
        app_headers: Sequence[tuple[str, str]] = (),
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One ``_msearch`` with (header, body) pairs; the parsed response (``responses`` in order).

        The app's own headers (its credentials, opaque id...) go along, and no others; the media type
        keeps the ``compatible-with`` level the app asked for.
        """
        incoming = dict((k.lower(), v) for k, v in app_headers)
        pairs = forwardable_headers(app_headers, drop=_LEG_DROP)
        pairs.extend(upstream_media_types(incoming, ndjson=True).items())
        pairs.append(_UNCOMPRESSED)
        payload = join_ndjson(item for pair in searches for item in pair)
        status, content = await self._post("/_msearch", payload, pairs, params)
        body = _json(content)
        if status >= 400:
            raise _error(status, body)
        if not isinstance(body, dict) or not isinstance(body.get("responses"), list):
            raise ClusterError("Elasticsearch answered _msearch without responses", status=502)
        return body

    async def mget(self, body: Mapping[str, Any], *, app_headers: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """One ``_mget``; Elasticsearch's error body is raised as ``UpstreamError``."""
        incoming = dict((k.lower(), v) for k, v in app_headers)
        pairs = forwardable_headers(app_headers, drop=_LEG_DROP)
        pairs.extend(upstream_media_types(incoming, ndjson=False).items())
        pairs.append(_UNCOMPRESSED)
        status, content = await self._post("/_mget", dumps(body), pairs)
        parsed = _json(content)
        if status >= 400 or not isinstance(parsed, dict):
            raise _error(status, parsed)
        return parsed

    async def search(
        self,
        index: str,
        body: Mapping[str, Any],
        *,
        app_headers: Sequence[tuple[str, str]] = (),
        header: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One search through ``_msearch`` (its error, if any, comes back in the response)."""
        result = await self.msearch([(header or {"index": index}, body)], app_headers=app_headers)
        first: dict[str, Any] = result["responses"][0]
        return first

    async def call(self, method: str, path: str, credentials: Credentials,
                   body: Mapping[str, Any] | None = None) -> tuple[int, httpx.Headers, Any]:
        """One JSON request with exactly ``credentials`` (and no other header of the app's):
        (status, response headers, parsed body). The endpoint's own routes ask who their caller is."""
        pairs = [*credentials.headers, ("accept", "application/json"), _UNCOMPRESSED]
        content = None
        if body is not None:
            pairs.append(("content-type", "application/json"))
            content = dumps(body)
        try:
            response = await self.client.request(method, path, content=content, headers=pairs)
        except httpx.TransportError as exc:
            raise _unavailable(self.base_url, exc) from exc
        return response.status_code, response.headers, _json(response.content)


class UpstreamError(ClusterError):
    """Elasticsearch answered with an error; ``body`` is its own error body, to relay verbatim."""

    def __init__(self, status: int, body: Any, error_type: str) -> None:
        super().__init__(f"Elasticsearch answered {status}", status=status, error_type=error_type)
        self.body = body


def _error(status: int, body: Any) -> UpstreamError:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    return UpstreamError(status, body, error.get("type", "api_error") if isinstance(error, dict) else "api_error")


def _json(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except ValueError:
        return {"error": {"type": "api_error", "reason": content[:200].decode("utf-8", "replace")}}


def _unavailable(base_url: str, exc: Exception) -> ClusterUnavailable:
    kind = type(exc).__name__
    return ClusterUnavailable(f"Elasticsearch at {base_url} did not answer ({kind}: {exc})")
