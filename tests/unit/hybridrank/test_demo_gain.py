"""The demo's last result line: the best run against BM25 and the learned rankers' gain over the best fusion."""

from __future__ import annotations

from hybridrank.demo import _gain_line


def _means(**ndcg: float) -> dict[str, dict[str, float]]:
    return {name: {"ndcg@10": value} for name, value in ndcg.items()}


def test_gain_over_the_best_fusion() -> None:
    line = _gain_line(_means(bm25=0.68, knn=0.65, es=0.684, rrf=0.699, linear=0.715, lightgbm=0.778, listnet=0.72))
    assert line == ("best NDCG@10: lightgbm 0.7780 vs BM25 0.6800 (+0.0980); gain over the best fusion: "
                    "lightgbm 0.7780 vs linear 0.7150 (+0.0630)")


def test_a_learned_ranker_below_fusion_shows_a_negative_gain() -> None:
    line = _gain_line(_means(bm25=0.37, rrf=0.413, linear=0.412, lightgbm=0.40))
    assert line.endswith("gain over the best fusion: lightgbm 0.4000 vs rrf 0.4130 (-0.0130)")


def test_without_a_learned_ranker_only_the_bm25_comparison() -> None:
    assert _gain_line(_means(bm25=0.5, linear=0.6)) == "best NDCG@10: linear 0.6000 vs BM25 0.5000 (+0.1000)"
