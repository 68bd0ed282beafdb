"""The Elasticsearch-compatible endpoint (``hybridrank serve``).

``app`` is the ASGI app and its routing over the shared ``state``; one module per request kind
(``search``, ``msearch``, ``passthrough``, ``own_routes``), with ``answer`` the stages a reranked search
goes through. Reading the app's request: ``dsl`` (rerank or pass through), ``query_text``; what goes
upstream: ``upstream_bodies``, ``upstream``; ``assignment`` (experiments), ``impressions`` (feedback
logging), ``serving`` (which ranker serves an index), ``wire``, ``outcome``, ``metrics``; ``thread`` runs
it in a background thread.
"""
