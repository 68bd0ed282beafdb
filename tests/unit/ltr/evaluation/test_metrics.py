"""Evaluation numbers checked against hand computations, scipy and ir-measures; W/T/L; the table."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from connector.retrieval.candidates import Candidate
from hybridrank.errors import DataError, HybridRankError
from ltr.evaluation.datasets import shared_datasets_dir
from ltr.evaluation.metrics import METRICS, evaluate_runs, retrieve_windows, run_from_windows

SHARED = shared_datasets_dir()


def cands(*ids: str) -> list[Candidate]:
    return [Candidate(doc_id=i, fused_score=1.0) for i in ids]  # equal fused scores: order must still hold


def test_metrics_are_the_protocol_ones() -> None:
    assert METRICS == ("ndcg@10", "recall@100", "mrr@10")


def test_run_from_windows_keeps_our_order_with_strict_scores() -> None:
    run = run_from_windows({"q1": cands("b", "a", "c", "a")})
    assert list(run["q1"]) == ["b", "a", "c"]  # duplicate dropped
    assert run["q1"] == {"b": 3.0, "a": 2.0, "c": 1.0}  # len - rank(0-based): all positive, strict


def test_remove_query_doc_drops_the_query_itself() -> None:
    windows = {"q1": cands("q1", "d1", "d2"), "q2": cands("d3")}
    assert run_from_windows(windows)["q1"] == {"q1": 3.0, "d1": 2.0, "d2": 1.0}
    assert run_from_windows(windows, remove_query_doc=True) == {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d3": 1.0}}
    # and it changes the numbers the way it should: the relevant doc moves to rank 1
    qrels = {"q1": {"d1": 1}}
    with_q = evaluate_runs(qrels, {"m": run_from_windows({"q1": cands("q1", "d1")})}, baseline=None)
    without = evaluate_runs(qrels, {"m": run_from_windows({"q1": cands("q1", "d1")}, remove_query_doc=True)},
                            baseline=None)
    assert with_q.means["m"]["mrr@10"] == 0.5 and without.means["m"]["mrr@10"] == 1.0


def test_toy_graded_run_matches_hand_computed_trec_values() -> None:
    # ranking d2 (grade 0), d1 (grade 2), d3 (grade 1); a relevant d4 never retrieved
    qrels = {"q1": {"d1": 2, "d2": 0, "d3": 1, "d4": 1}}
    run = run_from_windows({"q1": cands("d2", "d1", "d3")})
    report = evaluate_runs(qrels, {"m": run}, baseline=None)
    dcg = 0 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)  # linear gains, as trec_eval
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert report.means["m"]["ndcg@10"] == pytest.approx(dcg / idcg, abs=1e-12)
    assert report.means["m"]["recall@100"] == pytest.approx(2 / 3, abs=1e-12)  # grade 0 is not relevant
    assert report.means["m"]["mrr@10"] == pytest.approx(1 / 2, abs=1e-12)


def test_missing_and_empty_queries_count_as_zero_and_unjudged_are_ignored() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}}
    run = {"q1": {"d1": 1.0}, "q2": {}, "q9": {"d9": 1.0}}  # q3 missing, q9 unjudged
    report = evaluate_runs(qrels, {"m": run}, baseline=None)
    assert report.query_ids == ["q1", "q2", "q3"]
    assert report.per_query["m"]["ndcg@10"] == {"q1": 1.0, "q2": 0.0, "q3": 0.0}
    assert report.means["m"]["ndcg@10"] == pytest.approx(1 / 3)
    assert report.empty_queries == {"m": 2}


def test_ranking_beyond_the_cutoff_counts_only_for_recall() -> None:
    docs = [f"x{i}" for i in range(10)] + ["rel"]
    report = evaluate_runs({"q": {"rel": 1}}, {"m": run_from_windows({"q": cands(*docs)})}, baseline=None)
    assert report.means["m"] == {"ndcg@10": 0.0, "recall@100": 1.0, "mrr@10": 0.0}


def _two_runs() -> tuple[dict[str, dict[str, int]], dict[str, dict[str, dict[str, float]]]]:
    qrels = {f"q{i}": {"rel": 1} for i in range(6)}
    base = {f"q{i}": run_from_windows({"q": cands("a", "rel")})["q"] for i in range(6)}  # rel at 2
    better = {
        "q0": {"rel": 2.0, "a": 1.0}, "q1": {"rel": 2.0, "a": 1.0}, "q2": {"rel": 2.0, "a": 1.0},  # wins
        "q3": {"a": 2.0, "rel": 1.0},  # tie
        "q4": {"a": 3.0, "b": 2.0, "rel": 1.0},  # loss (rank 3)
        "q5": {"rel": 1.0},  # win
    }
    return qrels, {"bm25": base, "better": better}


def test_win_tie_loss_against_the_baseline() -> None:
    qrels, runs = _two_runs()
    report = evaluate_runs(qrels, runs)
    assert report.baseline == "bm25"
    assert report.win_tie_loss["better"]["ndcg@10"] == {"W": 4, "T": 1, "L": 1}
    assert report.win_tie_loss["better"]["recall@100"] == {"W": 0, "T": 6, "L": 0}
    assert "bm25" not in report.win_tie_loss and "bm25" not in report.p_values


def test_student_p_value_is_the_paired_t_test_on_per_query_scores() -> None:
    from scipy.stats import ttest_rel

    qrels, runs = _two_runs()
    report = evaluate_runs(qrels, runs)
    q = report.query_ids
    expected = ttest_rel([report.per_query["bm25"]["ndcg@10"][i] for i in q],
                         [report.per_query["better"]["ndcg@10"][i] for i in q]).pvalue
    assert report.p_values["better"]["ndcg@10"] == pytest.approx(float(expected), rel=1e-9)
    assert report.p_values["better"]["recall@100"] == 1.0  # identical per query: no evidence, not NaN
    assert report.significant("better", "ndcg@10") == bool(expected < 0.05)


def test_fisher_randomization_is_exact_on_few_queries_and_deterministic() -> None:
    import itertools

    qrels, runs = _two_runs()
    a = evaluate_runs(qrels, runs, stat_test="fisher")
    b = evaluate_runs(qrels, runs, stat_test="fisher")
    assert a.p_values == b.p_values
    # 6 queries: all 2^6 sign flips of the per-query differences are enumerated
    diffs = [a.per_query["better"]["ndcg@10"][q] - a.per_query["bm25"]["ndcg@10"][q] for q in a.query_ids]
    observed = abs(sum(diffs))
    flips = list(itertools.product((1, -1), repeat=len(diffs)))
    exact = sum(abs(sum(s * d for s, d in zip(signs, diffs, strict=True))) >= observed - 1e-12
                for signs in flips) / len(flips)
    assert a.p_values["better"]["ndcg@10"] == pytest.approx(exact, abs=1e-12)
    assert a.p_values["better"]["recall@100"] == 1.0
    with pytest.raises(HybridRankError, match="unknown stat_test"):
        evaluate_runs(qrels, runs, stat_test="wilcoxon")


def test_baseline_rules() -> None:
    qrels, runs = _two_runs()
    assert evaluate_runs(qrels, {"x": runs["better"], "y": runs["bm25"]}).baseline == "x"  # bm25 absent
    with pytest.raises(HybridRankError, match="baseline 'nope'"):
        evaluate_runs(qrels, runs, baseline="nope")
    with pytest.raises(DataError, match="qrels are empty"):
        evaluate_runs({}, runs)


def test_matches_ir_measures_on_real_graded_qrels() -> None:
    """Random rankings over Cranfield's graded qrels (with its grade-0 rows): ranx == ir-measures."""
    import ir_measures
    from ir_measures import RR, R, nDCG

    from ltr.evaluation.datasets import load_collection

    qrels = load_collection(str(SHARED / "cranfield")).qrels("test")
    rng = random.Random(7)
    all_docs = [str(i) for i in range(1, 1401)]
    run: dict[str, dict[str, float]] = {}
    for qid, judged in list(qrels.items())[:80]:
        pool = list(judged) + rng.sample(all_docs, 150)
        rng.shuffle(pool)
        run[qid] = run_from_windows({qid: cands(*pool[:120])})[qid]
    sub = {qid: qrels[qid] for qid in run}
    report = evaluate_runs(sub, {"m": run}, baseline=None)
    ref = ir_measures.calc_aggregate(
        [nDCG @ 10, R @ 100, RR @ 10],
        [ir_measures.Qrel(q, d, g) for q, docs in sub.items() for d, g in docs.items()],
        [ir_measures.ScoredDoc(q, d, s) for q, docs in run.items() for d, s in docs.items()],
    )
    assert report.means["m"]["ndcg@10"] == pytest.approx(ref[nDCG @ 10], abs=1e-9)
    assert report.means["m"]["recall@100"] == pytest.approx(ref[R @ 100], abs=1e-9)
    assert report.means["m"]["mrr@10"] == pytest.approx(ref[RR @ 10], abs=1e-9)
    assert 0.0 < report.means["m"]["ndcg@10"] < 1.0


def test_json_and_table() -> None:
    qrels = {f"q{i}": {"rel": 1} for i in range(12)}
    runs = {
        "bm25": {f"q{i}": {"a": 3.0, "b": 2.0, "rel": 1.0} for i in range(12)},
        "learned": {f"q{i}": {"rel": 1.0} for i in range(11)},  # one query left empty: still a loss
    }
    report = evaluate_runs(qrels, runs)
    report.meta = {"index": "x"}
    data = json.loads(report.to_json())
    assert data["means"]["learned"]["ndcg@10"] == pytest.approx(11 / 12)
    assert data["win_tie_loss"]["learned"]["ndcg@10"] == {"W": 11, "T": 0, "L": 1}
    assert set(data["per_query"]["bm25"]["ndcg@10"]) == set(qrels)
    assert data["meta"] == {"index": "x"} and data["empty_queries"] == {"bm25": 0, "learned": 1}
    console = Console(record=True, width=200, color_system=None)
    console.print(report.table(title="toy"))
    text = console.export_text()
    assert "learned" in text and "bm25 (baseline)" in text
    assert "0.9167 p=" in text and "†" in text  # significant gain is marked
    assert "11/0/1" in text


class FakeRetriever:
    """Duck-typed Retriever: records the batches it is asked for and fuses by a fixed order."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], bool]] = []

    def legs_many(self, texts: list[str], *, window: int | None = None, with_es_hybrid: bool = False,
                  **_: Any) -> list[list[str]]:
        self.calls.append((list(texts), with_es_hybrid))
        return [[f"{t}-1", f"{t}-2"] for t in texts]

    def fuse(self, legs: list[str], mode: str) -> list[Candidate]:
        order = legs if mode == "bm25" else list(reversed(legs))
        return [Candidate(doc_id=d) for d in order]


def test_retrieve_windows_fetches_legs_once_and_fuses_per_mode() -> None:
    fake = FakeRetriever()
    seen: list[int] = []
    out = retrieve_windows(fake, {"1": "a", "2": " ", "3": "c"}, ["bm25", "rrf"],  # type: ignore[arg-type]
                           batch_size=2, on_batch=seen.append)
    assert fake.calls == [(["a"], False), (["c"], False)]
    assert seen == [2, 1]
    assert [c.doc_id for c in out["bm25"]["1"]] == ["a-1", "a-2"]
    assert [c.doc_id for c in out["rrf"]["3"]] == ["c-2", "c-1"]
    assert out["bm25"]["2"] == [] and out["rrf"]["2"] == []
    retrieve_windows(fake, {"1": "a"}, ["es"])  # type: ignore[arg-type]
    assert fake.calls[-1] == (["a"], True)
    with pytest.raises(HybridRankError, match="unknown retrieval mode"):
        retrieve_windows(fake, {"1": "a"}, ["bogus"])  # type: ignore[arg-type]


def test_evaluate_help_is_light() -> None:
    import subprocess
    import sys

    code = ("import sys; from hybridrank.cli.main import main\n"
            "try: main(['evaluate', '--help'])\nexcept SystemExit: pass\n"
            "bad = [m for m in ('torch', 'sentence_transformers', 'lightgbm', 'ranx') if m in sys.modules]\n"
            "print('HEAVY', bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--collection" in out and "--remove-query-doc" in out and "--limit-queries" in out
    assert "HEAVY []" in out


def test_evaluate_rejects_unknown_modes() -> None:
    from hybridrank.cli.main import cli

    result = CliRunner().invoke(cli, ["evaluate", "--collection", "x", "--index", "i", "--modes", "bm25,foo"])
    assert result.exit_code == 2
    assert "unknown mode(s) foo" in result.output


def test_evaluate_reports_a_bad_collection_cleanly(tmp_path: Path) -> None:
    from hybridrank.cli.main import cli

    result = CliRunner().invoke(cli, ["evaluate", "--collection", str(tmp_path / "none"), "--index", "i"])
    assert result.exit_code == 1
    assert "collection folder not found" in result.output
