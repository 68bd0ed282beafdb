"""Training ranking models and loading them: ``feature_log`` (rows to learn from), ``training_data``
(grouped by query, split for validation), ``lambdarank`` and ``listnet`` (the two model types),
``train`` (``train_model``, the entry point), ``contract`` and ``model`` (a model directory, checked
at load), ``training_queries`` (which queries a model learned from), ``scorer`` (what a loaded model
scores with), ``compiled`` (LightGBM as native code), ``registry`` (which model serves), ``gate`` (the
promotion gate's rule and its record) and ``promotion`` (the one path into service)."""
