"""The async client to the real Elasticsearch behind the endpoint: pooled, short connect timeout.

``Upstream.forward`` relays one request verbatim and returns the streaming response;
``Upstream.msearch`` runs many searches in one round trip and returns the parsed responses.
A cluster that does not answer raises ``ClusterUnavailable`` promptly (connect timeout ~1 s), so the
app gets an Elasticsearch-shaped 503 instead of a hang.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
import orjson

from connector.endpoint.wire import dumps, forwardable_headers, join_ndjson, upstream_media_types
from hybridrank.errors import ClusterError, ClusterUnavailable

# Headers the app sent that we do not copy onto the legs we build ourselves.
_LEG_DROP = ("content-length", "content-type", "accept", "accept-encoding")
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
        auth_headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth_headers = dict(auth_headers or {})
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=connect_timeout_s * 5),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def _headers(self, headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        pairs = list(headers)
        present = {k.lower() for k, _ in pairs}
        # configured credentials only when the app sent none of its own
        if "authorization" not in present:
            pairs.extend((k, v) for k, v in self.auth_headers.items())
        return pairs

    async def forward(
        self,
        method: str,
        path: str,
        query: bytes,
        headers: Sequence[tuple[str, str]],
        content: bytes | AsyncIterator[bytes] | None,
    ) -> httpx.Response:
        """Send one request as the app sent it; the response is streamed (call ``aclose`` on it)."""
        pairs = self._headers(forwardable_headers(headers))
        url = httpx.URL(path=path, query=query)
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

        The app's own headers (authorization, opaque id...) go along; the media type keeps the
        ``compatible-with`` level the app asked for.
        """
        incoming = dict((k.lower(), v) for k, v in app_headers)
        pairs = self._headers(forwardable_headers(app_headers, drop=_LEG_DROP))
        pairs.extend(upstream_media_types(incoming, ndjson=True).items())
        pairs.append(_UNCOMPRESSED)
        payload = join_ndjson(item for pair in searches for item in pair)
        try:
            response = await self.client.post("/_msearch", content=payload, headers=pairs, params=dict(params or {}))
        except httpx.TransportError as exc:
            raise _unavailable(self.base_url, exc) from exc
        body = _json(response)
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise UpstreamError(response.status_code, body,
                                error.get("type", "api_error") if isinstance(error, dict) else "api_error")
        if not isinstance(body, dict) or not isinstance(body.get("responses"), list):
            raise ClusterError("Elasticsearch answered _msearch without responses", status=502)
        return body

    async def mget(self, body: Mapping[str, Any], *, app_headers: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """One ``_mget``; Elasticsearch's error body is raised as ``UpstreamError``."""
        incoming = dict((k.lower(), v) for k, v in app_headers)
        pairs = self._headers(forwardable_headers(app_headers, drop=_LEG_DROP))
        pairs.extend(upstream_media_types(incoming, ndjson=False).items())
        pairs.append(_UNCOMPRESSED)
        try:
            response = await self.client.post("/_mget", content=dumps(body), headers=pairs)
        except httpx.TransportError as exc:
            raise _unavailable(self.base_url, exc) from exc
        parsed = _json(response)
        if response.status_code >= 400 or not isinstance(parsed, dict):
            error = parsed.get("error", {}) if isinstance(parsed, dict) else {}
            raise UpstreamError(response.status_code, parsed,
                                error.get("type", "api_error") if isinstance(error, dict) else "api_error")
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


class UpstreamError(ClusterError):
    """Elasticsearch answered with an error; ``body`` is its own error body, to relay verbatim."""

    def __init__(self, status: int, body: Any, error_type: str) -> None:
        super().__init__(f"Elasticsearch answered {status}", status=status, error_type=error_type)
        self.body = body


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except ValueError:
        return {"error": {"type": "api_error", "reason": response.text[:200]}}


def _unavailable(base_url: str, exc: httpx.TransportError) -> ClusterUnavailable:
    kind = type(exc).__name__
    return ClusterUnavailable(f"Elasticsearch at {base_url} did not answer ({kind}: {exc})")
