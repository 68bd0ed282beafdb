"""Feature names -> feature objects: fixed names, and families parameterised by a field name.

A feature set is a list of names (the index's ``features`` in the config, or ``default_names``);
``resolve`` turns each into its feature, checking that the fields it reads are declared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from features import bm25_field, numeric_field, window_minmax
from features.base import Feature
from features.bm25_best_fields import BM25BestFields
from features.cross_encoder import CrossEncoderScore
from features.ctr import ClickThroughRate
from features.dense_similarity import DenseCosine
from features.found_by_both import FoundByBoth
from features.freshness import AgeDays, Freshness
from features.fused_score import FusedScore
from features.leg_rank import LegRank
from features.leg_top_gap import LegTopGap
from features.leg_zscore import LegZScore
from features.matched_terms import MatchedTerms, MatchedTermsRatio
from features.numeric_field import NumericField
from features.phrase_proximity import BM25Phrase, BM25PhraseRatio
from features.query_features import QueryLength
from features.query_idf import QueryIdf
from features.window_minmax import WindowMinMax
from features.window_relative import BM25Ratio, DenseGap
from hybridrank.errors import ConfigError

if TYPE_CHECKING:
    from hybridrank.config import IndexConfig

FIXED: dict[str, Callable[[IndexConfig], Feature]] = {
    "bm25_best_fields": lambda _cfg: BM25BestFields(),
    "dense_cosine": lambda _cfg: DenseCosine(),
    "bm25_best_fields_ratio": lambda _cfg: BM25Ratio(),
    "dense_cosine_gap": lambda _cfg: DenseGap(),
    "rank_bm25": lambda _cfg: LegRank("bm25"),
    "rank_knn": lambda _cfg: LegRank("knn"),
    "found_by_both": lambda _cfg: FoundByBoth(),
    "fused_rrf": lambda _cfg: FusedScore("rrf"),
    "fused_linear": lambda _cfg: FusedScore("linear"),
    "age_days": lambda _cfg: AgeDays(),
    "freshness": lambda cfg: Freshness(cfg.freshness_half_life_days),
    "ctr": lambda _cfg: ClickThroughRate(),
    "query_length": lambda _cfg: QueryLength(),
    "matched_terms": lambda _cfg: MatchedTerms(),
    "matched_terms_ratio": lambda _cfg: MatchedTermsRatio(),
    "bm25_zscore": lambda _cfg: LegZScore("bm25"),
    "dense_zscore": lambda _cfg: LegZScore("dense"),
    "bm25_top_gap": lambda _cfg: LegTopGap("bm25"),
    "dense_top_gap": lambda _cfg: LegTopGap("dense"),
    "query_idf_sum": lambda _cfg: QueryIdf("sum"),
    "query_idf_max": lambda _cfg: QueryIdf("max"),
    "query_idf_min": lambda _cfg: QueryIdf("min"),
    "bm25_phrase": lambda _cfg: BM25Phrase(),
    "bm25_phrase_ratio": lambda _cfg: BM25PhraseRatio(),
    # optional, never in default_names: a transformer pass per top-N candidate (NaN without a model)
    "cross_encoder": lambda cfg: CrossEncoderScore(cfg.cross_encoder_model, top_n=cfg.cross_encoder_top_n,
                                                   fields=cfg.embed_fields),
}


def _text_field(field_name: str, cfg: IndexConfig) -> bm25_field.BM25Field:
    if field_name not in cfg.text_fields:
        raise ConfigError(f"feature 'bm25_{field_name}': {field_name!r} is not one of the index's "
                          f"text_fields ({', '.join(cfg.text_fields)})")
    return bm25_field.BM25Field(field_name)


def _numeric(log: bool) -> Callable[[str, IndexConfig], Feature]:
    def build(field_name: str, cfg: IndexConfig) -> Feature:
        if field_name not in cfg.numeric_fields:
            raise ConfigError(f"feature {field_name!r}: not one of the index's numeric_fields "
                              f"({', '.join(cfg.numeric_fields) or 'none declared'})")
        return NumericField(field_name, log=log)

    return build


def _window_minmax(base_name: str, cfg: IndexConfig) -> Feature:
    """``minmax_<exact score>``: the base must be one of the exact scores (BM25 of the best fields or of a
    text field, the exact cosine)."""
    if base_name == "bm25_best_fields":
        return WindowMinMax(BM25BestFields())
    if base_name == "dense_cosine":
        return WindowMinMax(DenseCosine())
    if base_name.startswith(bm25_field.PREFIX) and len(base_name) > len(bm25_field.PREFIX):
        return WindowMinMax(_text_field(base_name[len(bm25_field.PREFIX):], cfg))
    raise ConfigError(f"feature '{window_minmax.PREFIX}{base_name}': min-max normalisation applies to an exact "
                      f"score: bm25_best_fields, dense_cosine or bm25_<text field>")


# prefix -> builder(field name, config); the longest matching prefix wins.
FAMILIES: dict[str, Callable[[str, IndexConfig], Feature]] = {
    bm25_field.PREFIX: _text_field,
    numeric_field.RAW_PREFIX: _numeric(False),
    numeric_field.LOG_PREFIX: _numeric(True),
    window_minmax.PREFIX: _window_minmax,
}

NEEDS_TIMESTAMP = ("age_days", "freshness")
# Issue 14's query-level and scale-free features, opt-in (list them in the index's ``features``): on
# Cranfield (5-fold CV) LightGBM .386 -> .407 with them, but SciFact (train -> test) .778 -> .761, so
# they are not in the default set (docs/ltr.md).
SCALE_FREE = ("matched_terms", "matched_terms_ratio", "bm25_zscore", "dense_zscore", "bm25_top_gap",
              "dense_top_gap", "query_idf_sum", "query_idf_max", "query_idf_min", "bm25_phrase", "bm25_phrase_ratio")


def transfer_names(cfg: IndexConfig) -> list[str]:
    """The window-relative feature set whose monotone model carries to other collections (docs/ltr.md,
    "Transfer"): every exact score min-max normalised over the window, each leg's rank, found by both.
    Opt-in (list them in the index's ``features``), trained with monotone constraints."""
    names = [f"{window_minmax.PREFIX}bm25_{f}" for f in cfg.text_fields]
    names += [f"{window_minmax.PREFIX}bm25_best_fields", f"{window_minmax.PREFIX}dense_cosine"]
    return [*names, "rank_bm25", "rank_knn", "found_by_both"]


def default_names(cfg: IndexConfig) -> list[str]:
    """The default feature set for an index: exact scores of both legs, ranks, fusion, and
    freshness/numeric features where the index declares the fields. ``ctr`` and ``SCALE_FREE`` are opt-in."""
    names = [f"bm25_{f}" for f in cfg.text_fields]
    names += ["bm25_best_fields", "dense_cosine", "bm25_best_fields_ratio", "dense_cosine_gap",
              "rank_bm25", "rank_knn", "found_by_both", "fused_rrf", "fused_linear"]
    if cfg.timestamp_field:
        names += list(NEEDS_TIMESTAMP)
    names += [f"num_{f}" for f in cfg.numeric_fields]
    names.append("query_length")
    return names


def resolve(name: str, cfg: IndexConfig) -> Feature:
    """The feature called ``name`` for this index; ``ConfigError`` naming the problem otherwise."""
    if name in FIXED:
        if name in NEEDS_TIMESTAMP and not cfg.timestamp_field:
            raise ConfigError(f"feature {name!r} needs the index's timestamp_field to be set")
        return FIXED[name](cfg)
    for prefix in sorted(FAMILIES, key=len, reverse=True):
        if name.startswith(prefix) and len(name) > len(prefix):
            return FAMILIES[prefix](name[len(prefix):], cfg)
    known = sorted(FIXED) + [f"{p}<field>" for p in FAMILIES]
    raise ConfigError(f"unknown feature {name!r}; known features: {', '.join(known)}")


def resolve_all(names: Sequence[str], cfg: IndexConfig) -> list[Feature]:
    seen: set[str] = set()
    out: list[Feature] = []
    for name in names:
        if name in seen:
            raise ConfigError(f"feature {name!r} is listed twice")
        seen.add(name)
        out.append(resolve(name, cfg))
    if not out:
        raise ConfigError("the feature set is empty")
    return out
