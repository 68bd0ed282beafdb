"""Cross-encoders: ``scoring`` (load one, score (query, document) pairs, rerank a window's top),
``pairs`` (a document's text and the labelled training pairs) and ``fine_tune`` (train one)."""
