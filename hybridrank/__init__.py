"""hybridrank: hybrid retrieval and learned reranking for Elasticsearch."""

__version__ = "0.1.0"
