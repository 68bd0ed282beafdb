"""Who may call the endpoint's own routes: a caller Elasticsearch authenticates, holding a privilege.

Apps' own requests are never judged here: they reach Elasticsearch with the app's credentials or none
(``connector.credentials``), and Elasticsearch answers. The endpoint's own routes write and read what
only the endpoint holds, so they ask Elasticsearch about their caller first:

- ``POST /_hybridrank/events``: the index privilege ``auth.events_privilege`` (default ``create_doc``)
  on ``feedback.events_index`` — the right to add documents to the index the events end up in;
- ``GET /_hybridrank/metrics``: the cluster privilege ``auth.metrics_privilege`` (default ``monitor``).

``GET /_security/_authenticate`` with the caller's credentials says who it is (401: nobody), then
``POST /_security/user/_has_privileges`` whether it holds the privilege. Both answers are kept for
``auth.cache_ttl_s`` per (hash of the credentials, route), at most ``auth.cache_size`` of them; a
refusal to authenticate is not kept. No or bad credentials → 401 with Elasticsearch's
``WWW-Authenticate``, no privilege → 403, both Elasticsearch-shaped ``security_exception``s.
Whether to ask at all is ``auth.own_routes``: ``auto`` asks when the cluster has security on (an
anonymous ``GET /_security/_authenticate`` answers 401, or 200 from its anonymous realm; a cluster
without security has no such route), checked again every ``auth.cache_ttl_s``. ``/_hybridrank/health``
stays open.

Elasticsearch unreachable (the event spool exists so that its outages lose no clicks): an answer
that expired less than ``auth.outage_grace_s`` ago still holds, and so does the last known state of
security; a caller never seen, or seen too long ago, gets 503 (the app retries). Before Elasticsearch
has ever answered, ``auto`` takes security to be on exactly when the endpoint has credentials of its
own configured: without them it could not store an event in a secured cluster anyway.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from connector.credentials import NO_CREDENTIALS, Credentials
from connector.endpoint.upstream import Upstream
from connector.endpoint.wire import RequestRejected, es_error
from hybridrank.config import Settings
from hybridrank.errors import ClusterUnavailable

AUTHENTICATE = "/_security/_authenticate"
HAS_PRIVILEGES = "/_security/user/_has_privileges"
_DEFAULT_CHALLENGE = ('Basic realm="security", charset="UTF-8"', 'ApiKey')
_NO_SECURITY = frozenset({400, 404, 405, 410})  # a cluster without security has no _security routes


@dataclass(frozen=True, slots=True)
class Principal:
    """Who Elasticsearch says the caller is; ``name`` is what events carry (``principal``)."""

    username: str
    realm: str | None = None
    roles: tuple[str, ...] = ()
    api_key: str | None = None  # the API key's id, when the caller used one

    @property
    def name(self) -> str:
        """``user``, or ``user/api_key/<id>``: two API keys of one owner are two sources."""
        return f"{self.username}/api_key/{self.api_key}" if self.api_key else self.username


@dataclass(frozen=True, slots=True)
class RouteRule:
    """What a route asks of its caller: a name for messages, and the privilege (as ``_has_privileges`` takes it)."""

    action: str
    privileges: dict[str, Any] | None  # a ``_has_privileges`` body; None = authentication only
    granted_by: str  # how a 403 names the privilege that would grant the action


class AuthRejected(RequestRejected):
    """401 / 403 / 503 for an own route's caller, Elasticsearch-shaped, with its ``WWW-Authenticate``."""

    def __init__(self, reason: str, *, status: int, challenge: tuple[str, ...] = ()) -> None:
        super().__init__(reason, status=status, error_type="security_exception")
        self.challenge = challenge

    def body(self) -> dict[str, Any]:
        extra = {"header": {"WWW-Authenticate": list(self.challenge)}} if self.challenge else {}
        return es_error(self.status, self.error_type, str(self), **extra)


@dataclass
class _Entry:
    principal: Principal
    allowed: bool
    expires: float


class OwnRoutesAuth:
    """Authentication and privilege checks of the own routes, with a small TTL cache."""

    def __init__(self, settings: Settings, *, clock: Any = time.monotonic) -> None:
        self.config = settings.auth
        self.clock = clock
        events_index = settings.feedback.events_index
        cfg = self.config
        self.rules = {
            "events": RouteRule(
                "hybridrank:events/post",
                {"index": [{"names": [events_index], "privileges": [cfg.events_privilege]}]}
                if cfg.events_privilege else None,
                f"on indices [{events_index}], this action is granted by the index privileges "
                f"[{cfg.events_privilege}]"),
            "metrics": RouteRule(
                "hybridrank:metrics/read",
                {"cluster": [cfg.metrics_privilege]} if cfg.metrics_privilege else None,
                f"this action is granted by the cluster privileges [{cfg.metrics_privilege}]"),
        }
        self._cache: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._security: bool | None = {"on": True, "off": False}.get(cfg.own_routes)
        self._security_checked = float("-inf")
        self._presumed = bool(settings.cluster.username or settings.cluster.api_key)  # until the cluster says

    async def authorize(self, upstream: Upstream, credentials: Credentials, route: str,
                        path: str) -> Principal | None:
        """The caller of ``route`` (``events``/``metrics``), or None when security is off; raises
        ``AuthRejected`` (401/403/503) when the caller may not."""
        if not await self._security_on(upstream):
            return None
        rule = self.rules[route]
        key = (credentials.digest(), route)
        now = self.clock()
        entry = self._cache.get(key)
        if entry is None or entry.expires <= now:
            try:
                principal = await self._authenticate(upstream, credentials, path)
                allowed = rule.privileges is None or await self._has_privileges(upstream, credentials, rule, path)
            except (ClusterUnavailable, AuthRejected) as exc:
                unanswered = isinstance(exc, ClusterUnavailable) or exc.status == 503
                if not (unanswered and entry is not None and now - entry.expires < self.config.outage_grace_s):
                    raise
                # Elasticsearch cannot answer right now: the recent answer holds (see the module docstring)
            else:
                entry = _Entry(principal, allowed, now + self.config.cache_ttl_s)
                self._remember(key, entry)
        if not entry.allowed:
            user = entry.principal.username
            raise AuthRejected(f"action [{rule.action}] is unauthorized for user [{user}] with effective roles "
                               f"[{','.join(entry.principal.roles)}] {rule.granted_by}", status=403)
        return entry.principal

    def _remember(self, key: tuple[str, str], entry: _Entry) -> None:
        if self.config.cache_ttl_s <= 0 and self.config.outage_grace_s <= 0:
            return
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)

    async def _security_on(self, upstream: Upstream) -> bool:
        if self.config.own_routes != "auto":
            return bool(self._security)
        now = self.clock()
        if self._security is not None and now - self._security_checked < max(self.config.cache_ttl_s, 1.0):
            return self._security
        try:
            status, _, _ = await upstream.call("GET", AUTHENTICATE, NO_CREDENTIALS)
        except ClusterUnavailable:  # an outage says nothing about security: the last known state holds
            return self._presumed if self._security is None else self._security
        if status in (200, 401):
            self._security = True
        elif status in _NO_SECURITY:
            self._security = False
        elif self._security is None:  # cannot tell: refuse rather than open up
            raise AuthRejected(f"cannot tell whether Elasticsearch has security on (it answered {status} "
                               f"to {AUTHENTICATE}); try again", status=503)
        else:
            return self._security
        self._security_checked = now
        return self._security

    async def _authenticate(self, upstream: Upstream, credentials: Credentials, path: str) -> Principal:
        status, headers, body = await upstream.call("GET", AUTHENTICATE, credentials)
        if status == 200 and isinstance(body, dict) and isinstance(body.get("username"), str):
            realm = body.get("authentication_realm")
            api_key = body.get("api_key")
            return Principal(body["username"],
                             realm.get("name") if isinstance(realm, dict) else None,
                             tuple(str(r) for r in body.get("roles") or ()),
                             str(api_key["id"]) if isinstance(api_key, dict) and api_key.get("id") else None)
        if status == 401:
            raise self._unauthenticated(credentials, headers.get_list("www-authenticate"), body, path)
        raise self._cannot_ask(AUTHENTICATE, status, body)

    async def _has_privileges(self, upstream: Upstream, credentials: Credentials, rule: RouteRule,
                              path: str) -> bool:
        status, headers, body = await upstream.call("POST", HAS_PRIVILEGES, credentials, rule.privileges)
        if status == 200 and isinstance(body, dict):
            return body.get("has_all_requested") is True
        if status == 401:
            raise self._unauthenticated(credentials, headers.get_list("www-authenticate"), body, path)
        raise self._cannot_ask(HAS_PRIVILEGES, status, body)

    @staticmethod
    def _unauthenticated(credentials: Credentials, challenge: list[str], body: Any, path: str) -> AuthRejected:
        if credentials.anonymous:
            reason = f"missing authentication credentials for REST request [{path}]"
        else:  # Elasticsearch's own words (they name the user), about our route instead of its own
            reason = _reason(body) or "unable to authenticate with the provided credentials"
            reason = reason.replace(f"[{AUTHENTICATE}]", f"[{path}]").replace(f"[{HAS_PRIVILEGES}]", f"[{path}]")
            if "REST request" not in reason:
                reason += f" for REST request [{path}]"
        return AuthRejected(reason, status=401, challenge=tuple(challenge) or _DEFAULT_CHALLENGE)

    @staticmethod
    def _cannot_ask(route: str, status: int, body: Any) -> AuthRejected:
        return AuthRejected(f"cannot authenticate the caller: Elasticsearch answered {status} to {route}"
                            + (f" ({_reason(body)})" if _reason(body) else ""), status=503)


def _reason(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("reason"), str):
        return str(error["reason"])
    return None
