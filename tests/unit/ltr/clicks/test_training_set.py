"""Training sets from clicks: label policies, grading, the time split, feature snapshots, training."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from hybridrank.errors import DataError
from ltr.clicks.click_model import ClickStatistics
from ltr.clicks.impressions import Impression, Shown
from ltr.clicks.pbm import DESIGN_EXAMINATION, fit_pbm
from ltr.clicks.training_set import (
    LABEL_LEVELS,
    build_click_training_set,
    click_labels,
    grade,
    label_scores,
    train_from_clicks,
)

T0 = datetime(2025, 3, 1, tzinfo=UTC)
NAMES = ["signal", "noise", "sparse"]
GRADE_CLICK = {g: 0.1 + 0.9 * (2**g - 1) / 15 for g in range(5)}


def logged(*, queries: int = 40, docs: int = 12, per_query: int = 120, explore: float = 0.15, seed: int = 7
           ) -> tuple[list[Impression], dict[tuple[str, str], int]]:
    """A fixed logging ranking per query (unrelated to relevance), a little exploration, PBM clicks.

    Features: ``signal`` = true grade + noise, ``noise``, ``sparse`` (NaN half the time).
    """
    rng = random.Random(seed)
    truth: dict[tuple[str, str], int] = {}
    impressions: list[Impression] = []
    plans = []
    for q in range(queries):
        pool = [f"q{q}-d{i}" for i in range(docs)]
        for d in pool:
            truth[(f"query {q}", d)] = rng.choice([0, 0, 0, 1, 1, 2, 3, 4])
        plans.append((q, pool, rng.sample(pool, 10)))
    span = timedelta(days=10)
    total = queries * per_query
    for k in range(per_query):
        for q, pool, fixed in plans:
            shown = rng.sample(pool, 10) if rng.random() < explore else fixed
            when = T0 + span * (len(impressions) / total)
            hits = []
            for i, d in enumerate(shown):
                g = truth[(f"query {q}", d)]
                feats = (g + rng.gauss(0, 0.8), rng.random(), math.nan if rng.random() < 0.5 else float(g))
                hits.append(Shown(d, i + 1, None, feats))
            imp = Impression(f"r{q}-{k}", when, "idx", f"Query {q}", hits, feature_names=list(NAMES))
            for i, d in enumerate(shown):
                if rng.random() < DESIGN_EXAMINATION[i] * GRADE_CLICK[truth[(f"query {q}", d)]]:
                    imp.clicks[d] = when
            impressions.append(imp)
    return impressions, truth


def test_grade_is_log2_relative_to_the_global_rate() -> None:
    # one grade per doubling, five levels
    assert [grade(s, 0.1, levels=5, steps=1) for s in (0.0, 0.09, 0.1, 0.19, 0.2, 0.39, 0.4, 0.8, 5.0)] == \
        [0, 0, 1, 1, 2, 2, 3, 4, 4]
    # the default: eight grades per doubling (x1.09 each), capped at 30
    assert [grade(s, 0.1) for s in (0.09, 0.1, 0.108, 0.11, 0.2, 0.4, 100.0)] == [0, 1, 1, 2, 9, 17, 30]
    # the simulated users' attractiveness of qrel grades 1 and 2 (.16, .28) gets two labels at p0 = .15
    assert grade(0.16, 0.15) < grade(0.28, 0.15) < grade(0.52, 0.15)
    assert grade(0.3, 0.0) == 0


def test_naive_and_debiased_scores_by_hand() -> None:
    imps = [Impression("r1", T0, "i", "q", [Shown("a", 1), Shown("b", 2)]),
            Impression("r2", T0, "i", "q", [Shown("a", 1), Shown("b", 2)])]
    imps[0].clicks = {"a": T0, "b": T0}
    imps[1].clicks = {"a": T0}
    stats = ClickStatistics.build(imps, {1: 1.0, 2: 0.25}, prior_weight=0.0)
    naive, naive_ref = label_scores(stats, "naive")
    debiased, debiased_ref = label_scores(stats, "debiased")
    assert naive == {("q", "a"): 1.0, ("q", "b"): 0.5} and naive_ref == 0.75
    assert debiased == {("q", "a"): 1.0, ("q", "b"): 2.0} and debiased_ref == pytest.approx(3 / 2.5)


def test_debiased_labels_track_true_relevance_better_than_naive() -> None:
    from scipy.stats import spearmanr

    impressions, truth = logged()
    examination = fit_pbm(impressions).examination
    assert examination[5] == pytest.approx(DESIGN_EXAMINATION[4] / DESIGN_EXAMINATION[0], abs=0.08)
    result = {}
    for policy in ("naive", "debiased"):
        labels, scores = click_labels(impressions, examination, policy=policy, prior_weight=10.0)
        pairs = sorted(scores)
        true = [truth[p] for p in pairs]
        result[policy] = (spearmanr(true, [scores[p] for p in pairs]).statistic,
                          spearmanr(true, [labels[p] for p in pairs]).statistic)
    naive, debiased = result["naive"], result["debiased"]
    assert debiased[0] > naive[0] + 0.1, result  # continuous scores
    assert debiased[1] > naive[1] + 0.1, result  # graded labels
    assert debiased[0] > 0.75, result


def test_training_set_time_split_snapshots_and_meta() -> None:
    impressions, _ = logged(queries=12, per_query=40)
    meta = {"feature_config_hash": "abc", "feature_params": [{"name": n} for n in NAMES], "context_params": {}}
    ts = build_click_training_set(impressions, policy="debiased", valid_fraction=0.25, feature_meta=meta)
    log = ts.log
    assert log.feature_names == NAMES and log.metadata["feature_config_hash"] == "abc"
    assert ts.time_cut == T0 + timedelta(days=7.5) - (timedelta(days=10) / (12 * 40)) * 0.75
    train_times = [t for q, t in zip(log.qids, log.query_times, strict=True) if q.startswith("train:")]
    valid_times = [t for q, t in zip(log.qids, log.query_times, strict=True) if q.startswith("valid:")]
    assert train_times and valid_times
    assert None not in train_times and None not in valid_times
    assert max(t for t in train_times if t) < ts.time_cut <= min(t for t in valid_times if t)
    assert ts.train_groups + ts.valid_groups == len({str(q) for q in log.qids})
    assert ts.valid_fraction == ts.valid_groups / (ts.train_groups + ts.valid_groups)
    assert set(ts.label_counts) <= set(range(LABEL_LEVELS)) and sum(ts.label_counts.values()) == len(log)
    # the features of a training row are the pair's earliest snapshot in the training period
    first = next(i for i in impressions if i.query == "Query 0")
    row = next(i for i, (q, d) in enumerate(zip(log.qids, log.doc_ids, strict=True))
               if q == "train:query 0" and d == first.hits[0].doc_id)
    np.testing.assert_array_equal(log.matrix[row], np.asarray(first.hits[0].features))


def test_mixed_feature_sets_and_featureless_events_are_refused() -> None:
    impressions, _ = logged(queries=3, per_query=10)
    impressions[5].feature_names = ["signal", "noise"]
    with pytest.raises(DataError, match="mix 2 feature sets"):
        build_click_training_set(impressions)
    bare = [Impression("r", T0, "i", "q", [Shown("a", 1)])]
    with pytest.raises(DataError, match="carries logged features"):
        build_click_training_set(bare)


def test_train_from_clicks_writes_a_model_with_the_logged_contract(tmp_path: Path) -> None:
    from ltr.training.contract import ModelContract
    from ltr.training.train import TrainConfig

    impressions, _ = logged(queries=30, per_query=40)
    ts = build_click_training_set(impressions, policy="debiased")
    cfg = TrainConfig(cv_folds=0, num_boost_round=60, early_stopping_rounds=20,
                      lightgbm_params={"min_data_in_leaf": 5, "num_threads": 1})
    result = train_from_clicks(ts, tmp_path / "model", config=cfg)
    contract = ModelContract.read(tmp_path / "model")
    assert contract.feature_names == NAMES
    assert contract.training["labels"] == "debiased" and contract.training["source"] == "events"
    assert contract.metrics["validation_split"] == "time"
    assert (result.train_queries, result.valid_queries) == (ts.train_groups, ts.valid_groups)
    assert result.importance[0][0] in ("signal", "sparse")  # the features that carry relevance
    assert contract.metrics["valid_window_ndcg@10"] > 0.6
