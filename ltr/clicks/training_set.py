"""Training sets from logged impressions and clicks, for ``ltr.training.train.train_model``.

Design (chosen for what trains, and to keep the time split honest):

- **Features** are the snapshots the endpoint logged with each impression (``Shown.features`` in
  ``Impression.feature_names`` order), never recomputed: what the model learns from is what serving
  computed. Every impression used must carry the same feature names; a mix is refused.
- **Groups**: one per (normalised query, period). The time range of the impressions is cut at
  ``valid_fraction`` of its length: the earliest ``1 - valid_fraction`` of the *time* trains, the
  rest validates (``train_model`` then splits by these group times, so no validation group is ever
  older than a training one). A query seen in both periods gives one group in each, labelled only
  from that period's clicks: validation asks "does the model predict the future clicks".
- **Rows**: every document shown under the query in the period that has a feature snapshot; its
  features are the *earliest* snapshot in the period (features such as ``ctr`` logged later already
  reflect this period's clicks, i.e. the label).
- **Labels** from the evidence of the (query, doc) pair in the period (all its impressions, with or
  without features), smoothed towards the period's global rate ``p0`` with ``prior_weight``
  pseudo-impressions, then graded on a log2 scale relative to ``p0`` in steps of an eighth of a
  doubling: below ``p0`` -> 0, ``[p0, 2^(1/8) p0)`` -> 1, ... one grade per factor 2^(1/8) ~ 1.09,
  capped at 30 (LightGBM's default ``label_gain`` covers grades 0-30; the cap is 12x the average).
  Fine steps matter: with the simulated users the attractiveness of the four qrel grades is .10, .16,
  .28 and .52, and a grade per whole doubling put .16 and .28 in one label. Measured on the films
  (the 6,000 logging searches of bench/results/feedback_loop.json, chosen on the *train* queries'
  qrels, which no click-trained model sees): debiased NDCG@10 .367 / .525 / .635 / .712 with 1, 2, 4,
  8 steps per doubling; naive labels barely move (.38-.44).

  * ``naive``: clicks / impressions: biased towards whatever the logging ranker put on top;
  * ``debiased``: clicks / expected clicks, expected = sum of the PBM examination probability of the
    positions shown (inverse-propensity weighting; ``ltr.clicks.click_model``), the same numbers as the ``ctr`` feature.

Groups with no document graded above 0, or with fewer than two rows, teach a listwise loss nothing
and are dropped here (counted), so ``train_model`` drops none and the time split stays exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridrank.errors import ContractMismatch, DataError, HybridRankError
from ltr.clicks.click_model import ClickStatistics
from ltr.clicks.impressions import Impression
from ltr.clicks.pbm import Pair, fit_pbm, normalize_query

if TYPE_CHECKING:
    from hybridrank.config import Settings
    from ltr.training.feature_log import FeatureLog
    from ltr.training.train import TrainConfig, TrainResult

LABEL_POLICIES = ("debiased", "naive")
LABEL_LEVELS = 31  # grades 0-30: LightGBM's default label_gain (2^g - 1) has 31 entries
STEPS_PER_DOUBLING = 8


def label_scores(stats: ClickStatistics, policy: str) -> tuple[dict[Pair, float], float]:
    """(smoothed click score per (query, doc), the global rate it is graded against) under ``policy``."""
    if policy == "debiased":
        scores = {pair: stats.smoothed(c) for pair, c in stats.pairs.items()}
        return {p: s for p, s in scores.items() if s is not None}, stats.prior_ctr
    if policy == "naive":
        shown = sum(c.impressions for c in stats.pairs.values())
        rate = sum(c.clicks for c in stats.pairs.values()) / shown if shown else 0.0
        m = stats.prior_weight
        return {pair: (c.clicks + m * rate) / (c.impressions + m) for pair, c in stats.pairs.items()
                if c.impressions + m > 0}, rate
    raise HybridRankError(f"unknown label policy {policy!r}; choose one of {', '.join(LABEL_POLICIES)}")


def grade(score: float, reference: float, *, levels: int = LABEL_LEVELS, steps: int = STEPS_PER_DOUBLING) -> int:
    """0 below ``reference``; then one grade per factor ``2^(1/steps)``: [ref, 2^(1/steps) ref) -> 1, ...,
    capped at ``levels - 1``."""
    if reference <= 0 or score < reference:  # reference 0 = no clicks at all: nothing is above average
        return 0
    return int(min(levels - 1, 1 + np.floor(steps * np.log2(score / reference))))


def click_labels(impressions: Sequence[Impression], examination: Mapping[int, float], *, policy: str,
                 prior_weight: float, levels: int = LABEL_LEVELS) -> tuple[dict[Pair, int], dict[Pair, float]]:
    """(graded label, continuous score) per (query, doc) shown in ``impressions``."""
    stats = ClickStatistics.build(impressions, examination, prior_weight=prior_weight)
    scores, reference = label_scores(stats, policy)
    return {p: grade(s, reference, levels=levels) for p, s in scores.items()}, scores


@dataclass
class ClickTrainingSet:
    """A feature log built from events, plus how it was built (for the contract and the report)."""

    log: FeatureLog
    policy: str
    time_cut: datetime
    train_groups: int
    valid_groups: int
    impressions: int
    impressions_without_features: int
    dropped_groups: int
    examination: dict[int, float]
    label_counts: dict[int, int]

    @property
    def valid_fraction(self) -> float:
        return self.valid_groups / (self.train_groups + self.valid_groups)

    def describe(self) -> dict[str, Any]:
        return {"source": "events", "labels": self.policy, "time_cut": self.time_cut.isoformat(),
                "train_groups": self.train_groups, "valid_groups": self.valid_groups,
                "impressions": self.impressions, "impressions_without_features": self.impressions_without_features,
                "dropped_groups": self.dropped_groups,
                "examination": {str(k): round(v, 6) for k, v in sorted(self.examination.items())},
                "label_counts": {str(k): v for k, v in sorted(self.label_counts.items())}}


def feature_set(impressions: Sequence[Impression]) -> tuple[list[str], int]:
    """The one feature-name list the impressions were logged with, and how many carry none."""
    seen: Counter[tuple[str, ...]] = Counter()
    without = 0
    for imp in impressions:
        if imp.feature_names and any(h.features is not None for h in imp.hits):
            seen[tuple(imp.feature_names)] += 1
        else:
            without += 1
    if not seen:
        raise DataError(f"none of the {len(impressions)} impressions carries logged features (the hybrid "
                        "order logs none): serve a learned model with feedback.log_impressions on, "
                        "then train from its events")
    if len(seen) > 1:
        sets = "; ".join(f"{list(names)} ({n} impressions)" for names, n in seen.most_common())
        raise DataError(f"the events mix {len(seen)} feature sets: {sets}. Train from one period "
                        "(--since/--until) whose impressions share one feature set")
    return list(next(iter(seen))), without


def build_click_training_set(
    impressions: Sequence[Impression],
    *,
    policy: str = "debiased",
    valid_fraction: float = 0.2,
    prior_weight: float = 10.0,
    examination: Mapping[int, float] | None = None,
    feature_meta: Mapping[str, Any] | None = None,
    levels: int = LABEL_LEVELS,
    max_iter: int = 2000,
) -> ClickTrainingSet:
    """Group, label and time-split logged impressions (see the module docstring).

    ``examination`` = PBM examination per position (default: fitted on ``impressions``).
    ``feature_meta`` = the live pipeline's ``feature_config_hash``/``feature_params``/``context_params``
    when its feature names equal the logged ones (the contract needs them to serve).
    """
    from ltr.training.feature_log import FeatureLog

    if policy not in LABEL_POLICIES:
        raise HybridRankError(f"unknown label policy {policy!r}; choose one of {', '.join(LABEL_POLICIES)}")
    if not 0 < valid_fraction < 1:
        raise HybridRankError(f"valid fraction must be in (0, 1), got {valid_fraction}")
    if not impressions:
        raise DataError("no impressions to train on")
    names, without = feature_set(impressions)
    if examination is None:
        examination = fit_pbm(impressions, max_iter=max_iter).examination
    ordered = sorted(impressions, key=lambda i: (i.timestamp, i.request_id))
    start, end = ordered[0].timestamp, ordered[-1].timestamp
    if start == end:
        raise DataError("every impression has the same timestamp: cannot split by time")
    cut = start + (end - start) * (1 - valid_fraction)
    periods = {"train": [i for i in ordered if i.timestamp < cut], "valid": [i for i in ordered if i.timestamp >= cut]}

    qids: list[str] = []
    doc_ids: list[str] = []
    labels: list[int] = []
    times: list[datetime] = []
    rows: list[np.ndarray] = []
    kept = {"train": 0, "valid": 0}
    dropped = 0
    label_counts: Counter[int] = Counter()
    for period, chosen in periods.items():
        graded, _ = click_labels(chosen, examination, policy=policy, prior_weight=prior_weight, levels=levels)
        snapshots: dict[str, dict[str, tuple[float, ...]]] = {}
        first_seen: dict[str, datetime] = {}
        for imp in chosen:  # time order: the first snapshot of a pair is the earliest
            if not imp.feature_names:
                continue
            query = normalize_query(imp.query)
            first_seen.setdefault(query, imp.timestamp)
            for hit in imp.hits:
                if hit.features is None:
                    continue
                if len(hit.features) != len(names):
                    raise DataError(f"impression {imp.request_id}: {len(hit.features)} feature values for "
                                    f"{len(names)} names")
                snapshots.setdefault(query, {}).setdefault(hit.doc_id, hit.features)
        for query, docs in snapshots.items():
            group_labels = [graded.get((query, d), 0) for d in docs]
            if len(docs) < 2 or max(group_labels) == 0:
                dropped += 1
                continue
            kept[period] += 1
            for (doc, vector), label in zip(docs.items(), group_labels, strict=True):
                qids.append(f"{period}:{query}")
                doc_ids.append(doc)
                labels.append(label)
                times.append(first_seen[query])
                rows.append(np.asarray(vector, dtype=np.float64))
                label_counts[label] += 1
    if kept["train"] == 0 or kept["valid"] == 0:
        raise DataError(f"too little click evidence to train and validate: {kept['train']} training and "
                        f"{kept['valid']} validation query groups with a clicked-above-average document "
                        f"({dropped} dropped); collect more events")
    meta = {**dict(feature_meta or {}), "feature_names": names, "collection": "events", "split": f"clicks:{policy}",
            "request_time": None, "window": None}
    log = FeatureLog(qids=np.asarray(qids, dtype=object), doc_ids=np.asarray(doc_ids, dtype=object),
                     labels=np.asarray(labels, dtype=np.int32), query_times=list(times), matrix=np.vstack(rows),
                     feature_names=names, metadata=meta)
    return ClickTrainingSet(log, policy, cut, kept["train"], kept["valid"], len(impressions), without, dropped,
                            dict(examination), dict(label_counts))


def live_feature_meta(settings: Settings, index: str, names: Sequence[str]) -> dict[str, Any] | None:
    """The contract metadata of ``index``'s live feature pipeline when the logged ``names`` are its
    features (so a model trained from the events loads for serving); None when they differ."""
    from features.pipeline import FeaturePipeline

    live = FeaturePipeline.from_config(settings.index(index))
    if list(names) != live.names:
        return None
    return {"feature_config_hash": live.config_hash(), "feature_params": live.feature_params(),
            "context_params": live.context_params(), "index": index}


def train_from_clicks(
    training_set: ClickTrainingSet,
    out_dir: str | Path | None,
    *,
    config: TrainConfig | None = None,
    training_meta: Mapping[str, Any] | None = None,
    model_store: Callable[[str], Path] | None = None,
) -> TrainResult:
    """``ltr.training.train.train_model`` on a click training set, validated on its later period."""
    from ltr.training.train import TrainConfig, train_model

    cfg = replace(config or TrainConfig(), valid_fraction=training_set.valid_fraction)
    meta = {**training_set.describe(), **dict(training_meta or {})}
    return train_model(training_set.log, out_dir, config=cfg, training_meta=meta, model_store=model_store)


@dataclass(frozen=True)
class ClickTrainingRun:
    """A model trained from an index's logged events, and what it was trained from."""

    training_set: ClickTrainingSet
    result: TrainResult
    clicks: int
    orphan_clicks: int
    note: str | None  # why the model will not serve as configured, when it will not


def train_from_events(settings: Settings, index: str, out_dir: Path | None, *, config: TrainConfig, labels: str,
                      since: datetime | None = None, until: datetime | None = None,
                      register: bool = False) -> ClickTrainingRun:
    """Read ``index``'s impressions and clicks in [since, until), build the click training set with
    ``labels`` and train (``hybridrank train --from-events``). Refuses, before training, events logged
    with other features than the index's live ones when the model is to be ``register``-ed."""
    from features.pipeline import FeaturePipeline
    from ltr.clicks.click_model import load_clicked_impressions
    from ltr.training.registry import ModelRegistry

    impressions, orphans = load_clicked_impressions(settings, index, since=since, until=until)
    names, _ = feature_set(impressions)
    feature_meta = live_feature_meta(settings, index, names)
    note = None
    if feature_meta is None:
        live = FeaturePipeline.from_config(settings.index(index)).names
        if register:
            raise ContractMismatch(f"the events were logged with other features than index {index!r} is "
                                   f"configured with: logged {names}, live {live}")
        note = (f"the events were logged with features {names}, index {index!r} is now configured with {live}: "
                "the model will not load for serving as configured")
    training_set = build_click_training_set(impressions, policy=labels, valid_fraction=config.valid_fraction,
                                            prior_weight=settings.feedback.ctr_prior_weight,
                                            feature_meta=feature_meta)
    registry = ModelRegistry.from_settings(settings)
    result = train_from_clicks(training_set, out_dir, config=config,
                               training_meta={"index": index, "events_index": settings.feedback.events_index,
                                              "since": since.isoformat() if since else None,
                                              "until": until.isoformat() if until else None},
                               model_store=lambda model_id: registry.model_dir(index, model_id))
    return ClickTrainingRun(training_set, result, sum(len(i.clicks) for i in impressions), orphans, note)
