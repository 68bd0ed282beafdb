"""Offline evaluation: NDCG@10, Recall@100, MRR@10 of any named runs, with paired significance.

Metrics and tests come from ranx (``evaluate``, ``compare``), never from hand-written formulas.
Runs are plain ``{query_id: {doc_id: score}}`` dicts keyed by a name ("bm25", "rrf", a learned
ranker's name...), so learned rankers join the same table as the retrieval modes.

Conventions, the trec_eval ones: a judged grade of 0 is non-relevant; NDCG uses linear gains; a
query with judgments but no results scores 0 on every metric (it is never dropped).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from hybridrank.errors import DataError, HybridRankError

if TYPE_CHECKING:
    from rich.table import Table

    from connector.retrieval.candidates import Candidate
    from connector.retrieval.retriever import Retriever

METRICS: tuple[str, ...] = ("ndcg@10", "recall@100", "mrr@10")
HEADLINE = "ndcg@10"
STAT_TESTS: dict[str, str] = {"student": "paired Student's t-test", "fisher": "Fisher randomization test"}

RunDict = dict[str, dict[str, float]]
QrelsDict = Mapping[str, Mapping[str, int]]


def run_from_windows(
    windows: Mapping[str, Sequence[Candidate]], *, remove_query_doc: bool = False
) -> RunDict:
    """A run from ordered candidate windows; the score is ``len(window) - rank``.

    Scores come from ranks, not from the fused scores, so the order ranx sees is exactly our
    order (including our tie-breaking), strictly decreasing. ``remove_query_doc`` drops a
    document whose id equals the query id (the BEIR ArguAna convention) before ranking.
    """
    run: RunDict = {}
    for qid, window in windows.items():
        doc_ids: list[str] = []
        seen: set[str] = set()
        for cand in window:
            if cand.doc_id in seen or (remove_query_doc and cand.doc_id == qid):
                continue
            seen.add(cand.doc_id)
            doc_ids.append(cand.doc_id)
        run[qid] = {doc_id: float(len(doc_ids) - rank) for rank, doc_id in enumerate(doc_ids)}
    return run


@dataclass
class EvalReport:
    """Means, per-query scores and significance of every run against one baseline."""

    metrics: list[str]
    baseline: str
    stat_test: str
    max_p: float
    query_ids: list[str]
    means: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, dict[str, float]]]
    p_values: dict[str, dict[str, float]]  # run -> metric -> p vs baseline (baseline absent)
    win_tie_loss: dict[str, dict[str, dict[str, int]]]  # run -> metric -> {"W","T","L"} vs baseline
    empty_queries: dict[str, int]  # run -> judged queries it returned nothing for
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def runs(self) -> list[str]:
        return list(self.means)

    def significant(self, run: str, metric: str) -> bool:
        p = self.p_values.get(run, {}).get(metric)
        return p is not None and p < self.max_p

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, allow_nan=False)

    def table(self, *, title: str | None = None) -> Table:
        """A rich table: one row per run, one column per metric (``†`` = significant vs baseline)."""
        from rich.table import Table

        test = STAT_TESTS.get(self.stat_test, self.stat_test)
        table = Table(
            title=title,
            caption=f"{len(self.query_ids)} queries; † p < {self.max_p:g} vs {self.baseline} ({test}); "
            f"W/T/L: queries where the run beats / ties / loses to {self.baseline} on {HEADLINE}",
        )
        table.add_column("run", style="bold")
        for metric in self.metrics:
            table.add_column(metric, justify="right")
        table.add_column(f"W/T/L ({HEADLINE})", justify="right")
        best = {m: max(self.means[r][m] for r in self.runs) for m in self.metrics}
        for run in self.runs:
            cells = [run + (" (baseline)" if run == self.baseline else "")]
            for metric in self.metrics:
                value = self.means[run][metric]
                text = f"{value:.4f}"
                if value == best[metric]:
                    text = f"[bold green]{text}[/]"
                p = self.p_values.get(run, {}).get(metric)
                if p is not None:
                    mark = "†" if self.significant(run, metric) else " "
                    text += f" [dim]p={p:.3f}[/]{mark}"
                cells.append(text)
            wtl = self.win_tie_loss.get(run, {}).get(HEADLINE)
            cells.append(f"{wtl['W']}/{wtl['T']}/{wtl['L']}" if wtl else "-")
            table.add_row(*cells)
        return table


def evaluate_runs(
    qrels: QrelsDict,
    runs: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    baseline: str | None = "bm25",
    metrics: Sequence[str] = METRICS,
    stat_test: str = "student",
    max_p: float = 0.05,
    n_permutations: int = 1000,
    random_seed: int = 42,
) -> EvalReport:
    """Score every run on the judged queries of ``qrels`` and test each against ``baseline``.

    Every judged query counts: a run missing it (or returning nothing) scores 0 there. Results
    for unjudged queries are ignored. ``baseline=None`` (or absent from ``runs`` when it is the
    default) means the first run.
    """
    from ranx import Qrels, Run, compare, evaluate

    if not runs:
        raise HybridRankError("nothing to evaluate: no runs given")
    if stat_test not in STAT_TESTS:
        raise HybridRankError(f"unknown stat_test {stat_test!r}; choose one of {', '.join(STAT_TESTS)}")
    judged = {str(q): {str(d): int(g) for d, g in docs.items()} for q, docs in qrels.items() if docs}
    if not judged:
        raise DataError("no judged queries: the qrels are empty")
    names = list(runs)
    if baseline is None or (baseline == "bm25" and baseline not in runs):
        baseline = names[0]
    if baseline not in runs:
        raise HybridRankError(f"baseline {baseline!r} is not among the runs ({', '.join(names)})")

    query_ids = list(judged)
    ranx_qrels = Qrels(judged)
    metric_list = list(metrics)
    ranx_runs: list[Run] = []
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    means: dict[str, dict[str, float]] = {}
    empty: dict[str, int] = {}
    for name in names:
        run = runs[name]
        # exactly the judged queries, with an empty entry (score 0) where the run has nothing
        filled = {qid: {str(d): float(s) for d, s in run.get(qid, {}).items()} for qid in query_ids}
        empty[name] = sum(1 for docs in filled.values() if not docs)
        ranx_run = Run(filled, name=name)
        evaluate(ranx_qrels, ranx_run, metric_list, return_mean=False)
        per_query[name] = {
            m: {qid: float(ranx_run.scores[m][qid]) for qid in query_ids} for m in metric_list
        }
        means[name] = {m: float(ranx_run.mean_scores[m]) for m in metric_list}
        ranx_runs.append(ranx_run)

    p_values: dict[str, dict[str, float]] = {}
    win_tie_loss: dict[str, dict[str, dict[str, int]]] = {}
    if len(names) > 1:
        # ranx's own Fisher test seeds only the calling thread of its parallel loop, so its p-values
        # change from run to run: ranx gives the t-test and W/T/L; Fisher comes from scipy, seeded.
        report = compare(ranx_qrels, ranx_runs, metric_list, stat_test="student", max_p=max_p)
        for name in names:
            if name == baseline:
                continue
            if stat_test == "student":
                p_values[name] = {
                    m: float(report.comparisons[baseline, name][m]["p_value"]) for m in metric_list
                }
            else:
                p_values[name] = {
                    m: _fisher_p(per_query[baseline][m], per_query[name][m], query_ids,
                                 n_permutations=n_permutations, random_seed=random_seed)
                    for m in metric_list
                }
            # ranx counts W/T/L of the first model of the pair against the second
            win_tie_loss[name] = {m: dict(report.win_tie_loss[name, baseline][m]) for m in metric_list}
    # identical per-query scores give a NaN t-test p-value (zero variance): no evidence, so 1.0;
    # a constant non-zero shift on every query is the limit p -> 0
    for name, by_metric in p_values.items():
        for metric, p in by_metric.items():
            if p != p:
                by_metric[metric] = 0.0 if means[name][metric] != means[baseline][metric] else 1.0
    return EvalReport(
        metrics=metric_list, baseline=baseline, stat_test=stat_test, max_p=max_p, query_ids=query_ids,
        means=means, per_query=per_query, p_values=p_values, win_tie_loss=win_tie_loss,
        empty_queries=empty,
    )


def _fisher_p(control: Mapping[str, float], treatment: Mapping[str, float], query_ids: Sequence[str], *,
              n_permutations: int, random_seed: int) -> float:
    """Two-sided paired randomization test on the mean difference (exact when 2^n <= n_permutations)."""
    import numpy as np
    from scipy.stats import permutation_test

    diffs = np.array([treatment[q] - control[q] for q in query_ids])
    if not diffs.any():
        return 1.0
    result = permutation_test(
        (diffs,), lambda d, axis: np.mean(d, axis=axis), permutation_type="samples",
        n_resamples=n_permutations, alternative="two-sided", vectorized=True,
        rng=np.random.default_rng(random_seed),
    )
    return float(result.pvalue)


def retrieve_windows(
    retriever: Retriever,
    queries: Mapping[str, str],
    modes: Sequence[str],
    *,
    window: int | None = None,
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, dict[str, list[Candidate]]]:
    """``{mode: {query_id: window}}``: the legs are retrieved once per query, then fused per mode.

    ``on_batch(n)`` is called after every batch of ``n`` queries (for a progress bar). A query
    whose text is blank gets an empty window (it scores 0), since there is nothing to search.
    """
    from connector.retrieval.retriever import ES_HYBRID, check_mode

    for mode in modes:
        check_mode(mode)
    with_es = ES_HYBRID in modes
    out: dict[str, dict[str, list[Candidate]]] = {mode: {} for mode in modes}
    items = list(queries.items())
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        searchable = [(qid, text) for qid, text in batch if text.strip()]
        legs = retriever.legs_many([text for _, text in searchable], window=window,
                                   with_es_hybrid=with_es) if searchable else []
        for (qid, _), query_legs in zip(searchable, legs, strict=True):
            for mode in modes:
                out[mode][qid] = retriever.fuse(query_legs, mode)
        for qid, text in batch:
            if not text.strip():
                for mode in modes:
                    out[mode][qid] = []
        if on_batch is not None:
            on_batch(len(batch))
    return out
