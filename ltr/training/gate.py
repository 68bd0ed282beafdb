"""The promotion gate's rule, its decision and the record of it kept with the model (``gate.json``).

A model must never make an index's search worse than the orders it would replace. On held-out judged
queries of the index (``ltr.evaluation.held_out``), the model and every baseline order of
``[gate] baselines`` (default BM25, Elasticsearch's query+knn sum, RRF and linear fusion) are scored
with ``[gate] metric`` (default NDCG@10, ranx); the best baseline is the one with the highest mean
there. The rule:

    promote  iff  delta = mean(model) - mean(best) > 0  and  one-sided paired p < alpha

where p comes from the same paired test ``hybridrank evaluate`` runs (``evaluate_runs``; Student's t
by default, ``[gate] stat_test``), halved towards the model's side: p_one = p/2 if delta > 0, else
1 - p/2. alpha defaults to 0.05; ``alpha = 1`` means "ahead on the mean" is enough. Fewer than
``[gate] min_queries`` held-out queries (default 20), or none at all, is refused as no evidence.
Picking the best of several baselines on the same queries favours the baseline slightly: a gate may
err that way. ``--force`` promotes a refused model, and the record says it was forced.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridrank.errors import HybridRankError, ModelError
from hybridrank.files import write_text_atomic

if TYPE_CHECKING:
    from hybridrank.config import GateConfig
    from ltr.evaluation.metrics import QrelsDict, RunDict

GATE_FILE = "gate.json"
MODEL_RUN = "model"
PASSED, REFUSED, NO_HELD_OUT = "passed", "refused", "no held-out judgments"


@dataclass(frozen=True)
class GateResult:
    """One decision of the gate, with every number it was made on."""

    model_id: str
    index: str
    variant: str
    outcome: str  # PASSED, REFUSED or NO_HELD_OUT
    reason: str
    source: str  # where the held-out judgments came from
    metric: str
    alpha: float
    stat_test: str
    queries: int = 0
    excluded_training_queries: int = 0
    model: float | None = None
    best_baseline: str | None = None
    baseline: float | None = None
    delta: float | None = None
    p_value: float | None = None  # one-sided: the model is better than the best baseline
    p_two_sided: float | None = None
    baselines: dict[str, float] = field(default_factory=dict)
    win_tie_loss: dict[str, int] = field(default_factory=dict)
    forced: bool = False
    decided_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED

    @property
    def promoted(self) -> bool:
        return self.passed or self.forced

    def numbers(self) -> str:
        """``NDCG@10 .7712 vs best baseline linear .7150 (delta +.0562, one-sided p = 3e-05, 300 queries)``."""
        if self.model is None or self.baseline is None or self.delta is None or self.p_value is None:
            return f"{self.queries} held-out queries"
        wtl = self.win_tie_loss
        return (f"{_METRIC_LABELS.get(self.metric, self.metric)} {self.model:.4f} vs best baseline "
                f"{self.best_baseline} {self.baseline:.4f} (delta {self.delta:+.4f}, one-sided "
                f"{_TESTS.get(self.stat_test, self.stat_test)} p = {self.p_value:.2g}, {self.queries} held-out "
                f"queries" + (f", W/T/L {wtl['W']}/{wtl['T']}/{wtl['L']}" if wtl else "") + ")")

    def summary(self) -> str:
        """One plain line: the verdict, the numbers, where they came from."""
        verdict = {PASSED: "passed", REFUSED: "refused", NO_HELD_OUT: "refused (no held-out judgments)"}[self.outcome]
        line = f"gate {verdict}: {self.model_id} for {self.index}/{self.variant}: {self.reason}"
        if self.model is not None:
            line += f"; {self.numbers()}"
        line += f"; held-out judgments: {self.source}"
        if self.excluded_training_queries:
            n = self.excluded_training_queries
            line += f" ({n} training quer{'y' if n == 1 else 'ies'} left out)"
        return line + (" -- PROMOTED ANYWAY (--force)" if self.forced and not self.passed else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GateResult:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in names})


_TESTS = {"student": "paired t-test", "fisher": "paired randomization test"}
_METRIC_LABELS = {"ndcg@10": "NDCG@10", "mrr@10": "MRR@10", "recall@100": "Recall@100"}


def no_held_out(model_id: str, index: str, variant: str, rule: GateConfig, why: str, *, source: str = "none",
                queries: int = 0, excluded: int = 0) -> GateResult:
    """The decision when there is nothing (or too little) to judge the model on: refused."""
    return GateResult(model_id, index, variant, NO_HELD_OUT, why, source, rule.metric, rule.alpha, rule.stat_test,
                      queries=queries, excluded_training_queries=excluded)


def too_few(queries: int, rule: GateConfig, *, model_id: str, index: str, variant: str, source: str,
            excluded: int = 0) -> GateResult | None:
    """The refusal when fewer than ``[gate] min_queries`` held-out queries are judged; None when enough are."""
    if queries >= rule.min_queries:
        return None
    return no_held_out(model_id, index, variant, rule, f"only {queries} held-out judged queries, the gate needs "
                       f"{rule.min_queries} ([gate] min_queries)", source=source, queries=queries, excluded=excluded)


def decide(qrels: QrelsDict, model_run: RunDict, baseline_runs: dict[str, RunDict], rule: GateConfig, *,
           model_id: str, index: str, variant: str, source: str, excluded: int = 0) -> GateResult:
    """Apply the rule (module docstring) to the model's and the baselines' runs on the held-out ``qrels``,
    scored and tested by ``ltr.evaluation.metrics.evaluate_runs``, the code of ``hybridrank evaluate``."""
    from ltr.evaluation.metrics import evaluate_runs

    if not baseline_runs:
        raise HybridRankError("the gate needs at least one baseline run")
    if MODEL_RUN in baseline_runs:
        raise HybridRankError(f"a baseline may not be named {MODEL_RUN!r}")
    few = too_few(sum(1 for docs in qrels.values() if docs), rule, model_id=model_id, index=index,
                  variant=variant, source=source, excluded=excluded)
    if few is not None:
        return few
    means = evaluate_runs(qrels, baseline_runs, baseline=None, metrics=(rule.metric,)).means
    best = max(baseline_runs, key=lambda name: means[name][rule.metric])  # ties: the first in config order
    report = evaluate_runs(qrels, {best: baseline_runs[best], MODEL_RUN: model_run}, baseline=best,
                           metrics=(rule.metric,), stat_test=rule.stat_test, max_p=rule.alpha)
    model, baseline = report.means[MODEL_RUN][rule.metric], report.means[best][rule.metric]
    delta = model - baseline
    p_two = report.p_values[MODEL_RUN][rule.metric]
    p_one = p_two / 2 if delta > 0 else 1 - p_two / 2
    if delta > 0 and p_one < rule.alpha:
        outcome, reason = PASSED, f"better than the best baseline with one-sided p < {rule.alpha:g}"
    elif delta > 0:
        outcome, reason = REFUSED, (f"ahead of the best baseline, but not significantly (one-sided p >= "
                                    f"{rule.alpha:g})")
    else:
        outcome, reason = REFUSED, "not better than the best baseline"
    return GateResult(model_id, index, variant, outcome, reason, source, rule.metric, rule.alpha, rule.stat_test,
                      queries=len(report.query_ids), excluded_training_queries=excluded, model=model,
                      best_baseline=best, baseline=baseline, delta=delta, p_value=p_one, p_two_sided=p_two,
                      baselines={name: means[name][rule.metric] for name in baseline_runs},
                      win_tie_loss=dict(report.win_tie_loss[MODEL_RUN][rule.metric]))


def forced(result: GateResult) -> GateResult:
    """The same decision, overridden by ``--force`` (a passed one needs no forcing and is unchanged)."""
    return result if result.passed else replace(result, forced=True)


def record_decision(model_dir: Path, result: GateResult) -> None:
    """Append the decision to the model's ``gate.json`` (every decision is kept, the latest last)."""
    path = Path(model_dir) / GATE_FILE
    decisions = read_decisions(model_dir)
    decisions.append(result.to_dict())
    write_text_atomic(path, json.dumps({"format_version": 1, "decisions": decisions}, indent=2,
                                       allow_nan=False) + "\n")


def read_decisions(model_dir: Path) -> list[dict[str, Any]]:
    """Every decision the gate made about the model, oldest first (empty: never gated)."""
    path = Path(model_dir) / GATE_FILE
    if not path.is_file():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        decisions = raw["decisions"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is unreadable: {exc}") from exc
    if not isinstance(decisions, list):
        raise ModelError(f"{path}: 'decisions' is not a list")
    return decisions


def latest_decision(model_dir: Path, index: str | None = None, variant: str | None = None) -> GateResult | None:
    """The latest decision (for ``index``/``variant`` when given), as a ``GateResult``."""
    for raw in reversed(read_decisions(model_dir)):
        if (index is None or raw.get("index") == index) and (variant is None or raw.get("variant") == variant):
            return GateResult.from_dict(raw)
    return None
