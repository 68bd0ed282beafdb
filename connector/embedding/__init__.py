"""The bi-encoder: ``embedder`` (a sentence-transformers model loaded offline, document vectors cached on
disk) and ``onnx_query`` (the same weights on ONNX Runtime, for one query at a time)."""
