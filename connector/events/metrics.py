"""What the event log counts, as Prometheus metrics: events appended, stored, duplicate, rejected, waiting.

One set per ``EventLog``, on the registry it is given: the endpoint passes its own, so these appear
at ``/_hybridrank/metrics`` beside the search metrics. The spool writes the append and backlog
figures, the shipper (``connector.events.shipping``) the stored, duplicate and rejected ones.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EventMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.appended = Counter("hybridrank_events_appended", "Events made durable in the spool, by type.",
                                ("type",), registry=registry)
        self.stored = Counter("hybridrank_events_stored", "Events indexed into the events index.",
                              registry=registry)
        self.duplicates = Counter("hybridrank_events_duplicates",
                                  "Events Elasticsearch already had (same event_id): stored once.", registry=registry)
        self.rejected = Counter("hybridrank_events_rejected", "Events Elasticsearch refused (dead-lettered).",
                                registry=registry)
        self.flush_failures = Counter("hybridrank_events_flush_failures",
                                      "Flushes that kept events in the spool (cluster down, 429, 5xx).",
                                      registry=registry)
        self.backlog = Gauge("hybridrank_events_spool_backlog", "Events in the spool not yet stored.",
                             registry=registry)
        self.queued = Gauge("hybridrank_events_queued", "Impressions handed off, not yet in the spool.",
                            registry=registry)
        self.dropped = Counter("hybridrank_events_dropped",
                               "Impressions dropped because the in-memory queue was full (spool unwritable).",
                               ("type",), registry=registry)
