"""Whose identity a request to Elasticsearch carries: the endpoint lends none of its own.

``Credentials`` is a caller's identity as Elasticsearch reads it from a request: ``Authorization``
(basic, ``ApiKey``, ``Bearer`` — what the official clients send), plus Elasticsearch's own
``es-security-runas-user`` (run as another user) and ``es-secondary-authorization`` headers when an
app sends them. It is taken once from the app's request and sent, exactly, on every request the
endpoint makes on that app's behalf; a request without any of them goes without, and Elasticsearch
decides (401, or its own ``anonymous`` realm).

The configured credentials (``[cluster]`` ``username``/``api_key``) are the endpoint's own, for its own
work only: shipping events, model and experiment state, the CLI's feature logging. A client that acts
for apps is built without them (``connector.client.make_client(..., anonymous=True)``) and each of its
calls carries the app's (``on_behalf_of``).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

# Lower-case names of the request headers that say who the caller is.
CREDENTIAL_HEADERS = ("authorization", "es-security-runas-user", "es-secondary-authorization")

_Client = TypeVar("_Client", bound="Elasticsearch")
# A client's view per caller is kept: building one (``Elasticsearch.options``) costs ~0.5 ms of CPU
# here (it makes ~40 namespace objects), too much for every reranked search.
_VIEWS_PER_CLIENT = 256
_views: weakref.WeakKeyDictionary[Any, OrderedDict[Credentials, Any]] = weakref.WeakKeyDictionary()
_views_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Credentials:
    """A caller's credential headers (lower-case names, in ``CREDENTIAL_HEADERS`` order); empty = none."""

    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, headers: Iterable[tuple[str, str]]) -> Credentials:
        """The credentials among a request's headers (the first value of each, as Elasticsearch reads it)."""
        found: dict[str, str] = {}
        for key, value in headers:
            name = key.lower()
            if name in CREDENTIAL_HEADERS and name not in found:
                found[name] = value
        return cls(tuple((name, found[name]) for name in CREDENTIAL_HEADERS if name in found))

    @property
    def anonymous(self) -> bool:
        """No credentials: Elasticsearch answers 401 unless its anonymous realm lets the request in."""
        return not self.headers

    def as_dict(self) -> dict[str, str]:
        return dict(self.headers)

    def digest(self) -> str:
        """A hash that tells credentials apart without keeping them (cache keys, logs)."""
        payload = "\n".join(f"{k}:{v}" for k, v in self.headers).encode("utf-8", "surrogateescape")
        return hashlib.sha256(payload).hexdigest()

    def __repr__(self) -> str:  # never print a secret
        return f"Credentials({[k for k, _ in self.headers]}, sha256={self.digest()[:12]})"


NO_CREDENTIALS = Credentials()


def on_behalf_of(client: _Client, credentials: Credentials) -> _Client:
    """``client`` (built with ``anonymous=True``) sending exactly ``credentials`` on each request.

    A client with credentials of its own is refused: with a caller that sent none, it would lend them.
    """
    own = {str(k).lower() for k in getattr(client, "_headers", None) or {}}  # the client's default headers
    if own.intersection(CREDENTIAL_HEADERS):
        raise ValueError("a client with credentials of its own cannot act on behalf of a caller; "
                         "build it with make_client(..., anonymous=True)")
    with _views_lock:
        views = _views.setdefault(client, OrderedDict())
        view = views.get(credentials)
        if view is not None:
            views.move_to_end(credentials)
            return view
    view = client.options(headers=credentials.as_dict())
    with _views_lock:
        views[credentials] = view
        while len(views) > _VIEWS_PER_CLIENT:
            views.popitem(last=False)
    return view


def without_userinfo(url: str) -> str:
    """``url`` without ``user:password@``: HTTP clients send those as credentials of their own."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
