"""ListNet: a small listwise torch ranker (``model_type = "listnet"``), an MLP over standardised features.

Missing values are imputed with the training medians, then every feature is standardised with the
training means and standard deviations; those numbers are the contract's ``preprocessing``, which
the numpy forward pass (``ltr.training.model.listnet_scorer``) applies at load. The loss is ListNet's
top-one cross entropy per query; the epoch with the best validation NDCG@10 is kept (early stopping
with patience). torch is imported inside the function only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ltr.training.model import listnet_scorer

if TYPE_CHECKING:
    from ltr.training.training_data import TrainingData


def train_listnet(data: TrainingData, train_g: list[int], valid_g: list[int], *, seed: int, hidden: int,
                  epochs: int, lr: float, patience: int
                  ) -> tuple[Callable[[Path], None], Callable[[np.ndarray], np.ndarray], list[float],
                             dict[str, Any], dict[str, Any]]:
    """(save, scorer, importance per feature, info, preprocessing) of the best epoch on the validation queries."""
    import torch
    from sklearn.metrics import ndcg_score

    torch.manual_seed(seed)
    tr = data.rows(train_g)
    x_train = data.matrix[tr]
    medians = np.nanmedian(x_train, axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    filled = np.where(np.isnan(x_train), medians, x_train)
    means = filled.mean(axis=0)
    stds = filled.std(axis=0)
    stds = np.where(stds > 1e-12, stds, 1.0)
    prep = {"medians": medians.tolist(), "means": means.tolist(), "stds": stds.tolist()}

    def standardise(x: np.ndarray) -> np.ndarray:
        return (np.where(np.isnan(x), medians, x) - means) / stds

    def padded(group_ids: list[int]) -> tuple[Any, Any, Any]:
        longest = max(len(data.groups[g]) for g in group_ids)
        f = data.matrix.shape[1]
        xs = np.zeros((len(group_ids), longest, f), dtype=np.float32)
        ys = np.zeros((len(group_ids), longest), dtype=np.float32)
        mask = np.zeros((len(group_ids), longest), dtype=bool)
        for i, g in enumerate(group_ids):
            rows = data.groups[g]
            xs[i, : len(rows)] = standardise(data.matrix[rows])
            ys[i, : len(rows)] = data.labels[rows]
            mask[i, : len(rows)] = True
        return torch.from_numpy(xs), torch.from_numpy(ys), torch.from_numpy(mask)

    model = torch.nn.Sequential()
    model.add_module("hidden", torch.nn.Linear(data.matrix.shape[1], hidden))
    model.add_module("relu", torch.nn.ReLU())
    model.add_module("out", torch.nn.Linear(hidden, 1))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    x_tr, y_tr, m_tr = padded(train_g)
    neg_inf = torch.tensor(-1e9)

    def weights() -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().astype(np.float64).copy() for k, v in model.state_dict().items()}

    def valid_ndcg(w: dict[str, np.ndarray]) -> float:
        scorer = listnet_scorer(w, prep)
        values = []
        for g in valid_g:
            rows = data.groups[g]
            if len(rows) < 2:
                continue
            values.append(ndcg_score([data.labels[rows]], [scorer(data.matrix[rows])], k=10))
        return float(np.mean(values)) if values else 0.0

    best_w, best_ndcg, best_epoch, stale = weights(), -1.0, 0, 0
    for epoch in range(1, epochs + 1):
        model.train()
        optimiser.zero_grad()
        scores = model(x_tr).squeeze(-1)
        # ListNet top-one loss: cross entropy between softmax(labels) and softmax(scores), per query
        target = torch.softmax(torch.where(m_tr, y_tr, neg_inf), dim=1)
        log_p = torch.log_softmax(torch.where(m_tr, scores, neg_inf), dim=1)
        loss = -(target * torch.where(m_tr, log_p, torch.zeros_like(log_p))).sum(dim=1).mean()
        loss.backward()
        optimiser.step()
        current = valid_ndcg(weights())
        if current > best_ndcg + 1e-6:
            best_w, best_ndcg, best_epoch, stale = weights(), current, epoch, 0
        else:
            stale += 1
            if stale >= patience:
                break
    final = listnet_scorer(best_w, prep)
    # importance: mean absolute first-layer weight on standardised inputs
    gains = np.abs(best_w["hidden.weight"]).sum(axis=0).tolist()
    info = {"best_epoch": best_epoch, "hidden": hidden, "lr": lr}

    def save(path: Path) -> None:
        torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in best_w.items()},
                    "hidden": hidden}, path)

    return save, final, gains, info, prep
