"""Retrieval: ``candidates`` (what every later stage reads), ``queries`` (pure body builders), ``retriever``
(the one executor: both legs in one ``_msearch``), ``fusion`` (RRF and linear) and ``hit_ids`` (naming hits
from a doc value)."""
