"""The state endpoint replicas must agree on, where the config says it lives.

``documents`` holds named JSON documents (experiments, the model registry, click statistics) in files
under the home or in an Elasticsearch index; ``artefacts`` stores model directories whole in
Elasticsearch, checked by checksum; ``lazy_index`` is the client of one state index; ``stores`` picks
them from ``[state]``.
"""
