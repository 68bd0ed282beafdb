"""Ranking experiments: named variants, how traffic is split between them, their statistics and report.

``store`` (experiments, variants, sticky bucketing, the experiments file) and ``team_draft`` (the
interleaved list and its click credit) are what the endpoint applies; ``launch`` starts an
experiment and ``traffic`` counts what it has logged. The statistics are split by method:
``metrics`` (a search's metrics and per-user values), ``bucketed`` (A/B), ``randomization`` (its
p-value), ``interleaving``, ``series`` (CTR over time) and ``power`` (planning), with ``results``
for the records they return and ``stats`` for the entry points; ``report`` renders the HTML report.
"""
