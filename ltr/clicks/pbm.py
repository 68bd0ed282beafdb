"""The position-based click model (PBM), fitted by EM: how likely each position is examined.

The PBM (Chuklin, Markov & de Rijke, "Click Models for Web Search", ch. 3) says a shown document is
clicked iff it is examined (probability ``theta[position]``) and found attractive
(``alpha[query, doc]``): ``P(click) = theta_r * alpha_qd``. ``fit_pbm`` estimates both by
expectation-maximisation over (query, doc, position) cells.

Scale. PBM only identifies the product: ``(c*theta, alpha/c)`` fits as well as ``(theta, alpha)``.
We report ``theta`` **relative to rank 1** (``theta[1] == 1``; the lowest shown position if rank 1
never appears) and rescale ``alpha`` so products are unchanged; ``alpha`` then reads "the click
probability this document would have at rank 1". Relative ``theta`` is also only identifiable when
documents appear at varied positions (A/B traffic, interleaving, reformulations): from one fixed
ranking per query any ``theta`` fits; ``PositionModel.varied_pairs`` reports how much variation there was.

Queries are keyed by ``normalize_query``. It lives here, beside the cells it keys; the click
statistics counted with the fitted ``theta`` (``ltr.clicks.click_model``) import it from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hybridrank.errors import DataError
from ltr.clicks.impressions import Impression

# DESIGN.md's simulated users: examination probability at ranks 1-10
DESIGN_EXAMINATION = (0.68, 0.61, 0.48, 0.34, 0.28, 0.20, 0.11, 0.10, 0.08, 0.06)
Pair = tuple[str, str]  # (normalised query, doc id)


@lru_cache(maxsize=8192)
def normalize_query(text: str) -> str:
    """The key of a query in the click model and statistics: stripped, lowercased, whitespace collapsed."""
    return " ".join(str(text).split()).lower()


@dataclass(frozen=True)
class PositionModel:
    """A fitted PBM: examination per position (relative to ``anchor_position``) and attractiveness."""

    examination: dict[int, float]
    attractiveness: dict[Pair, float]
    anchor_position: int
    iterations: int
    converged: bool
    log_likelihood: float
    observations: int  # shown (impression, doc) pairs
    varied_pairs: float  # share of (query, doc) pairs seen at >= 2 positions

    def examination_at(self, position: int) -> float:
        """theta of ``position``; a position never observed takes the nearest observed one above it."""
        if position in self.examination:
            return self.examination[position]
        known = [p for p in self.examination if p <= position]
        return self.examination[max(known)] if known else self.examination[min(self.examination)]


def _cells(impressions: Iterable[Impression]) -> tuple[list[int], list[Pair], np.ndarray, np.ndarray,
                                                      np.ndarray, np.ndarray]:
    """Aggregate into (query, doc, position) cells: positions, pairs, per-cell index arrays and counts."""
    counts: dict[tuple[Pair, int], list[int]] = {}
    for imp in impressions:
        query = normalize_query(imp.query)
        for hit in imp.hits:
            cell = counts.setdefault(((query, hit.doc_id), hit.position), [0, 0])
            cell[0] += 1
            cell[1] += hit.doc_id in imp.clicks
    positions = sorted({pos for (_, pos) in counts})
    pairs = list(dict.fromkeys(pair for (pair, _) in counts))
    pos_at = {p: i for i, p in enumerate(positions)}
    pair_at = {p: i for i, p in enumerate(pairs)}
    keys = list(counts)
    pos_idx = np.fromiter((pos_at[k[1]] for k in keys), dtype=np.int64, count=len(keys))
    pair_idx = np.fromiter((pair_at[k[0]] for k in keys), dtype=np.int64, count=len(keys))
    n = np.fromiter((counts[k][0] for k in keys), dtype=np.float64, count=len(keys))
    c = np.fromiter((counts[k][1] for k in keys), dtype=np.float64, count=len(keys))
    return positions, pairs, pos_idx, pair_idx, n, c


def fit_pbm(impressions: Sequence[Impression], *, max_iter: int = 2000, tol: float = 1e-5,
            alpha_prior: tuple[float, float] = (0.0, 0.0)) -> PositionModel:
    """EM fit of the position-based model; ``DataError`` without impressions or without clicks.

    ``alpha_prior`` = (a, b) pseudo-counts (clicks, skips) added to every attractiveness update
    (MAP-style smoothing of rarely shown pairs); (0, 0) = maximum likelihood, as in Chuklin et al.
    """
    positions, pairs, pos_idx, pair_idx, n, c = _cells(impressions)
    if not pairs:
        raise DataError("no impressions with shown documents: nothing to fit a click model on")
    if c.sum() == 0:
        raise DataError(f"none of the {int(n.sum())} shown documents was clicked: a click model needs clicks")
    n_pos, n_pair = len(positions), len(pairs)
    shown_at = np.bincount(pos_idx, weights=n, minlength=n_pos)
    shown_pair = np.bincount(pair_idx, weights=n, minlength=n_pair)
    # start: theta from the raw CTR per position (scaled into (0, 1)), alpha flat
    ctr_at = np.bincount(pos_idx, weights=c, minlength=n_pos) / shown_at
    theta = np.clip(0.9 * ctr_at / max(ctr_at.max(), 1e-12), 0.05, 0.95)
    alpha = np.full(n_pair, 0.5)
    a, b = alpha_prior
    skips = n - c
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        t, al = theta[pos_idx], alpha[pair_idx]
        not_clicked = np.maximum(1.0 - t * al, 1e-12)
        # E-step: P(examined | no click) = t(1-a)/(1-ta); P(attractive | no click) = a(1-t)/(1-ta)
        examined = c + skips * t * (1.0 - al) / not_clicked
        attractive = c + skips * al * (1.0 - t) / not_clicked
        new_theta = np.bincount(pos_idx, weights=examined, minlength=n_pos) / shown_at
        new_alpha = (np.bincount(pair_idx, weights=attractive, minlength=n_pair) + a) / (shown_pair + a + b)
        change = max(float(np.abs(new_theta - theta).max()), float(np.abs(new_alpha - alpha).max()))
        theta, alpha = new_theta, new_alpha
        if change < tol:
            converged = True
            break
    p = np.clip(theta[pos_idx] * alpha[pair_idx], 1e-12, 1 - 1e-12)
    log_likelihood = float((c * np.log(p) + skips * np.log1p(-p)).sum())
    anchor = next((i for i in range(n_pos) if theta[i] > 0), 0)
    scale = float(theta[anchor]) or 1.0
    varied = np.bincount(pair_idx, minlength=n_pair) >= 2
    return PositionModel(
        examination={positions[i]: float(theta[i] / scale) for i in range(n_pos)},
        attractiveness={pairs[j]: float(alpha[j] * scale) for j in range(n_pair)},
        anchor_position=positions[anchor], iterations=iterations, converged=converged,
        log_likelihood=log_likelihood, observations=int(n.sum()), varied_pairs=float(varied.mean()))


def plot_examination(model: PositionModel, path: Path, *, title: str) -> None:
    """Fitted examination (relative to rank 1) beside DESIGN.md's simulated users', as PNG (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = sorted(model.examination)[:20]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(positions, [model.examination[p] for p in positions], "o-", label="fitted (EM)")
    ax.plot(range(1, 11), [e / DESIGN_EXAMINATION[0] for e in DESIGN_EXAMINATION], "s--", alpha=0.7,
            label="DESIGN.md simulation")
    ax.set_xlabel("position")
    ax.set_ylabel(f"examination / rank {model.anchor_position}")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
