"""The one place that builds an Elasticsearch client and translates its errors into ours."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from connector.credentials import without_userinfo
from hybridrank.config import Settings
from hybridrank.errors import ClusterError, ClusterUnavailable, IndexNotFound

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


def cluster_url(settings: Settings) -> str:
    """The configured cluster, or the managed local node's loopback address."""
    return settings.cluster.url or f"http://127.0.0.1:{settings.cluster.port}"


def make_client(settings: Settings, *, url: str | None = None, timeout_s: float | None = None,
                anonymous: bool = False, **options: Any) -> Elasticsearch:
    """A client with retries on 429/502/503/504 and connection errors, and our auth settings.

    ``anonymous``: without the configured credentials — the client that acts for apps, each call
    carrying the app's own (``connector.credentials.on_behalf_of``). ``options`` go to ``Elasticsearch``.
    """
    from elasticsearch import Elasticsearch

    cluster = settings.cluster
    target = url or cluster_url(settings)
    auth: dict = {}
    if cluster.api_key and not anonymous:
        auth["api_key"] = cluster.api_key
    elif cluster.username and not anonymous:
        auth["basic_auth"] = (cluster.username, cluster.password)
    return Elasticsearch(
        without_userinfo(target) if anonymous else target,
        request_timeout=timeout_s or cluster.request_timeout_s,
        retry_on_status=(429, 502, 503, 504),
        retry_on_timeout=True,
        max_retries=3,
        serializers=_orjson_serializers(),
        **auth,
        **options,
    )


def _orjson_serializers() -> dict[str, Any]:
    """orjson for JSON and NDJSON bodies: responses of ~170 hits with named scores, and ``_msearch``
    bodies with 384-float query vectors, parse and encode faster (same values as json)."""
    from elasticsearch.serializer import NdjsonSerializer, OrjsonSerializer

    class OrjsonNdjsonSerializer(OrjsonSerializer, NdjsonSerializer):  # NDJSON framing, orjson per line
        mimetype = NdjsonSerializer.mimetype

    return {OrjsonSerializer.mimetype: OrjsonSerializer(), NdjsonSerializer.mimetype: OrjsonNdjsonSerializer()}


@contextlib.contextmanager
def translate_errors(index: str | None = None) -> Iterator[None]:
    """Re-raise client errors as our typed errors with a message a person can act on."""
    from elasticsearch import ApiError, ConnectionError, NotFoundError, TransportError

    try:
        yield
    except NotFoundError as exc:
        err_type = _error_type(exc)
        if err_type == "index_not_found_exception" or (index and err_type is None):
            missing = _error_field(exc, "index") or index or "?"
            raise IndexNotFound(str(missing)) from exc
        raise ClusterError(f"not found: {_reason(exc)}", status=404, error_type=err_type or "not_found") from exc
    except ApiError as exc:
        raise ClusterError(
            f"Elasticsearch refused the request ({exc.meta.status}): {_reason(exc)}",
            status=exc.meta.status,
            error_type=_error_type(exc) or "api_error",
        ) from exc
    except ConnectionError as exc:
        raise ClusterUnavailable(
            f"cannot reach Elasticsearch ({exc.message}); is it running? try `hybridrank es start`"
        ) from exc
    except TransportError as exc:
        raise ClusterUnavailable(f"Elasticsearch transport error: {exc.message}") from exc


def _error_body(exc: Exception) -> dict:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error: dict = body["error"]
        return error
    return {}


def _error_type(exc: Exception) -> str | None:
    return _error_body(exc).get("type")


def _error_field(exc: Exception, name: str) -> object:
    return _error_body(exc).get(name)


def _reason(exc: Exception) -> str:
    error = _error_body(exc)
    if not error:
        return str(getattr(exc, "message", exc))
    reason = str(error.get("reason", error.get("type", "unknown error")))
    causes = error.get("root_cause") or []
    if causes and isinstance(causes[0], dict) and causes[0].get("reason") not in (None, reason):
        reason += f" ({causes[0].get('reason')})"
    caused_by = error.get("caused_by")
    if isinstance(caused_by, dict) and caused_by.get("reason"):
        reason += f"; caused by: {caused_by['reason']}"
    return reason
