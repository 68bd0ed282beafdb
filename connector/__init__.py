"""Everything that talks to Elasticsearch or serves HTTP: ``client``; ``node`` (the managed local node),
``retrieval``, ``indexing``, ``embedding``, ``events`` (the durable event log) and ``endpoint`` (the
Elasticsearch-compatible endpoint)."""
