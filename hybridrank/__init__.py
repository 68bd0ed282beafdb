"""hybridrank: hybrid retrieval and learned reranking for Elasticsearch.

This package is the project's shell: ``config`` and ``errors`` (which every package uses), ``files``,
``runtime``, the main job (``demo``) and the command line (``cli``)."""

__version__ = "0.1.0"
