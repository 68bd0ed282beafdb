"""A feature log made ready to train on: rows grouped by query, and the validation split.

Queries whose window holds no relevant document teach nothing to a listwise loss and are dropped
(the count is reported); a feature that is NaN on every remaining row is refused by name. The
validation split is by query (``GroupShuffleSplit``), or by time when every query has a timestamp:
the latest queries validate, as click-trained models must be judged on a later period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from hybridrank.errors import DataError, HybridRankError

if TYPE_CHECKING:
    from ltr.training.feature_log import FeatureLog


@dataclass
class TrainingData:
    matrix: np.ndarray
    labels: np.ndarray
    qids: list[str]  # one per group, in order
    groups: list[np.ndarray]  # row indices per query
    query_times: list[datetime | None]
    doc_ids: np.ndarray
    feature_names: list[str]
    dropped_queries: int

    def rows(self, group_ids: list[int]) -> np.ndarray:
        """The row indices of the queries ``group_ids``, query after query."""
        return np.concatenate([self.groups[g] for g in group_ids])


def prepare(log: FeatureLog) -> TrainingData:
    """Group rows by query, drop queries without a relevant candidate, refuse unusable input."""
    if len(log) == 0:
        raise DataError("the feature log is empty: no rows to train on")
    groups: list[np.ndarray] = []
    qids: list[str] = []
    times: list[datetime | None] = []
    dropped = 0
    first_row: dict[str, int] = {}
    for qid, idx in log.groups():
        first_row[qid] = int(idx[0])
        if not (log.labels[idx] > 0).any():
            dropped += 1
            continue
        groups.append(idx)
        qids.append(qid)
        times.append(log.query_times[int(idx[0])])
    if not groups:
        raise DataError(f"no query has a relevant document in its candidate window ({dropped} queries "
                        "logged): the judgments are empty or do not match this index's document ids")
    kept = np.concatenate(groups)
    matrix = log.matrix[kept]
    all_nan = [n for j, n in enumerate(log.feature_names) if np.isnan(matrix[:, j]).all()]
    if all_nan:
        raise DataError(f"feature(s) {', '.join(repr(n) for n in all_nan)} are NaN for every training row "
                        "(the index has no values for them): remove them from the index's feature list")
    # re-index groups onto the compacted arrays
    offsets = np.cumsum([0] + [len(g) for g in groups])
    new_groups = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(groups))]
    return TrainingData(matrix, log.labels[kept].astype(np.int32), qids, new_groups, times, log.doc_ids[kept],
                        list(log.feature_names), dropped)


def split_queries(data: TrainingData, valid_fraction: float, seed: int) -> tuple[list[int], list[int], str]:
    """(train group indices, valid group indices, how): by time if every query has one, else random by query."""
    n = len(data.groups)
    if not 0 < valid_fraction < 1:
        raise HybridRankError(f"valid fraction must be in (0, 1), got {valid_fraction}")
    n_valid = max(1, round(n * valid_fraction))
    if n - n_valid < 1:
        raise DataError(f"only {n} usable quer{'y' if n == 1 else 'ies'}: too few to hold out a validation set")
    if all(t is not None for t in data.query_times):
        order = sorted(range(n), key=lambda i: (data.query_times[i], data.qids[i]))
        return sorted(order[: n - n_valid]), sorted(order[n - n_valid :]), "time"
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=1, test_size=n_valid, random_state=seed)
    train_idx, valid_idx = next(splitter.split(np.zeros(n), groups=np.arange(n)))
    return sorted(int(i) for i in train_idx), sorted(int(i) for i in valid_idx), "query"
