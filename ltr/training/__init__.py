"""Training ranking models and loading them: ``feature_log`` (rows to learn from), ``training_data``
(grouped by query, split for validation), ``lambdarank`` and ``listnet`` (the two model types),
``train`` (``train_model``, the entry point), ``contract`` and ``model`` (a model directory, checked
at load), ``scorer`` (what a loaded model scores with), ``compiled`` (LightGBM as native code) and
``registry`` (which model serves)."""
