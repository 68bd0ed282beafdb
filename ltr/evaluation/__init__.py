"""Offline evaluation: ``datasets`` (BEIR-layout collections), ``judgments`` (labels), ``metrics`` (ranx
metrics and paired tests over named runs), ``learned`` (learned rankers and the cross-encoder as runs
of the same table) and ``held_out`` (the promotion gate's held-out judged queries and its runs)."""
