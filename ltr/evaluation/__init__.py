"""Offline evaluation: ``datasets`` (BEIR-layout collections), ``judgments`` (labels), ``metrics`` (ranx
metrics and paired tests over named runs) and ``learned`` (learned rankers and the cross-encoder as runs
of the same table)."""
