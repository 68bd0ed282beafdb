"""Every feature's ``column`` (the whole window at once) equals its ``value`` per candidate, bit for bit."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from connector.retrieval.candidates import Candidate
from connector.retrieval.fusion import window_fusions
from features.base import DENSE_SCORE, ExactScores, FeatureContext, bm25_key
from features.phrase_proximity import PHRASE_KEY
from features.pipeline import FeaturePipeline, FeatureRequest
from features.registry import SCALE_FREE, default_names, resolve, transfer_names
from hybridrank.config import IndexConfig

CFG = IndexConfig(text_fields={"title": 2.0, "text": 1.0, "abstract": 0.5})
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _window(seed: int, size: int) -> tuple[list[Candidate], dict[str, ExactScores]]:
    """Candidates found by one leg or both, some deleted, clauses that did not match, ties, zeros."""
    rng = random.Random(seed)
    cands: list[Candidate] = []
    exact: dict[str, ExactScores] = {}
    tie = rng.uniform(1, 9)
    for i in range(size):
        doc_id = f"d{i}"
        legs = rng.choice([("bm25",), ("knn",), ("bm25", "knn")])
        cands.append(Candidate(doc_id, leg_scores={leg: rng.uniform(0, 20) for leg in legs},
                               leg_ranks={leg: rng.randint(1, 100) for leg in legs}))
        if rng.random() < 0.1:
            continue  # deleted between retrieval and the feature search
        named: dict[str, float] = {}
        for field in CFG.text_fields:
            roll = rng.random()
            if roll < 0.3:
                continue  # did not match: a true zero
            named[bm25_key(field)] = tie if roll < 0.4 else (0.0 if roll < 0.45 else rng.uniform(0, 25))
        if rng.random() < 0.5:
            named[PHRASE_KEY] = rng.uniform(0, 10)
        if rng.random() < 0.9:
            named[DENSE_SCORE] = rng.uniform(0.5, 1.0)
        exact[doc_id] = ExactScores(named)
    return cands, exact


def _features() -> list[object]:
    names = list(dict.fromkeys([*default_names(CFG), *SCALE_FREE, *transfer_names(CFG)]))
    return [resolve(name, CFG) for name in names]


@pytest.mark.parametrize(("seed", "size"), [(1, 170), (2, 40), (3, 1), (4, 0), (5, 300)])
def test_columns_equal_values_bit_for_bit(seed: int, size: int) -> None:
    cands, exact = _window(seed, size)
    with_columns = [f for f in _features() if hasattr(f, "column")]
    assert len(with_columns) >= 11
    for feature in with_columns:
        ctx = FeatureContext("heart attack risk, in older adults?", np.ones(3), NOW, CFG, exact,
                             window_fusions(cands, CFG), candidates=cands)
        column = feature.column(ctx)  # type: ignore[attr-defined]
        fresh = FeatureContext("heart attack risk, in older adults?", np.ones(3), NOW, CFG, exact,
                               window_fusions(cands, CFG), candidates=cands)  # no shared cache
        values = np.array([feature.value(fresh, c) for c in cands], dtype=np.float64)  # type: ignore[attr-defined]
        assert column.dtype == np.float64 and column.shape == (len(cands),)
        assert column.tobytes() == values.tobytes(), feature.name  # type: ignore[attr-defined]


def test_nothing_matched_and_no_vectors() -> None:
    """A window where no text clause matched (best = 0) and no document had a vector."""
    cands = [Candidate(f"d{i}", leg_scores={"knn": 0.5}, leg_ranks={"knn": i + 1}) for i in range(5)]
    exact = {c.doc_id: ExactScores({}) for c in cands}
    for feature in _features():
        if not hasattr(feature, "column"):
            continue
        ctx = FeatureContext("q", None, NOW, CFG, exact, window_fusions(cands, CFG), candidates=cands)
        fresh = FeatureContext("q", None, NOW, CFG, exact, window_fusions(cands, CFG), candidates=cands)
        values = np.array([feature.value(fresh, c) for c in cands], dtype=np.float64)  # type: ignore[attr-defined]
        assert feature.column(ctx).tobytes() == values.tobytes(), feature.name  # type: ignore[attr-defined]


def test_the_pipeline_uses_columns_and_gives_the_per_candidate_matrix() -> None:
    cands, exact = _window(7, 120)
    pipeline = FeaturePipeline(None, CFG)
    request = FeatureRequest("heart attack risk", np.ones(3), cands, NOW)
    matrix = pipeline.matrix(request, exact)
    ctx = FeatureContext("heart attack risk", np.ones(3), NOW, CFG, exact, window_fusions(cands, CFG),
                         candidates=cands)
    expected = np.array([[f.value(ctx, c) for f in pipeline.features] for c in cands], dtype=np.float64)
    assert matrix.tobytes() == expected.tobytes()


def _leg_features() -> list[object]:
    return [resolve(name, CFG) for name in ("rank_bm25", "rank_knn", "found_by_both", "fused_rrf", "fused_linear")]


@pytest.mark.parametrize("case", ["knn_first", "one_per_leg", "no_leg", "other_leg", "nan_score"])
def test_leg_columns_equal_the_per_candidate_values(case: str) -> None:
    """The leg features on columns (``features.leg_columns``), and their per-candidate path where the
    columns cannot mirror the window (another leg, a NaN score), equal ``value`` bit for bit."""
    cands, _ = _window(11, 60)
    if case == "knn_first":  # legs inserted dense first, as a candidate built elsewhere may hold them
        cands = [Candidate(c.doc_id, leg_scores=dict(reversed(c.leg_scores.items())),
                           leg_ranks=dict(reversed(c.leg_ranks.items()))) for c in cands]
    elif case == "one_per_leg":  # each leg found one document: zero spans (linear fusion gives the weight)
        cands = [Candidate("a", leg_scores={"bm25": 3.0}, leg_ranks={"bm25": 1}),
                 Candidate("b", leg_scores={"knn": 0.7}, leg_ranks={"knn": 1})]
    elif case == "no_leg":  # a candidate no leg found (Elasticsearch's own hybrid order can hold one)
        cands.append(Candidate("lonely"))
    elif case == "other_leg":
        cands[3].leg_ranks["es"] = 2
        cands[3].leg_scores["es"] = 1.5
    elif case == "nan_score":
        cands[5].leg_scores["bm25"] = float("nan")
    for feature in _leg_features():
        ctx = FeatureContext("q", None, NOW, CFG, {}, candidates=cands)
        fresh = FeatureContext("q", None, NOW, CFG, {}, window_fusions(cands, CFG), candidates=cands)
        values = np.array([feature.value(fresh, c) for c in cands], dtype=np.float64)  # type: ignore[attr-defined]
        assert feature.column(ctx).tobytes() == values.tobytes(), (case, feature.name)  # type: ignore[attr-defined]
        lazy = FeatureContext("q", None, NOW, CFG, {}, candidates=cands)  # fused scores computed on first use
        lazy_values = np.array([feature.value(lazy, c) for c in cands], dtype=np.float64)  # type: ignore[attr-defined]
        assert lazy_values.tobytes() == values.tobytes(), (case, feature.name)  # type: ignore[attr-defined]
