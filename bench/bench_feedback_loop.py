"""The feedback loop, measured end to end on the real node and the real endpoint (issue 5's "done when").

Simulated users (the position-based model of DESIGN.md, graded qrels as relevance) search the films
collection through ``hybridrank serve``'s endpoint (in this process, uvicorn in a thread) and post
their clicks to ``/_hybridrank/events``. Everything below reads those events back from Elasticsearch.

1. logging traffic: an A/B/C of es / hybrid / rrf order on the train queries (position variation
   for the click model) -> ``clicks aggregate`` (EM fit of the examination curve) -> two rankers
   trained from clicks only (naive and debiased labels) -> NDCG@10 on the test queries' qrels against
   the hybrid baselines, with paired tests;
2. A/B and interleaving between plain BM25 order (``es``) and LightGBM trained on the train queries'
   qrels, on the films (default) or any judged collection: which variant each picks, and the searches
   each needs (first time p stays below .05 in this run; and for 80% power by a cluster bootstrap over
   users, interleaving with the report's sign test and with a t-test of the click difference), once
   per spread of the users' click propensity (``--ab-propensity-sd``, default 0 and 1).
   SciFact's binary qrels give a relevant result an attractiveness of .16 against .10: there the
   bucketed A/B does not decide in any affordable number of searches;
3. A/A: independent runs of hybrid-vs-hybrid traffic (``--aa-runs``), each re-bucketed with many
   salts (each salt is another experiment on the same users): the report's false-positive rate at
   p < .05, per run and pooled;
4. freshness: users who prefer recent films; a ranker trained from their clicks with the freshness
   features and the same ranker with them held constant; their importance and an A/B of the two.

Run: ``.venv/bin/python bench/bench_feedback_loop.py`` (needs the ``films`` index: ``hybridrank datasets
films`` then ``hybridrank index ~/.cache/hybridrank/datasets/films --index films``). Writes
bench/results/feedback_loop.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.client import make_client  # noqa: E402
from hybridrank.config import Settings, load_settings  # noqa: E402
from ltr.clicks.feedback_loop import FeedbackLoop, resalted  # noqa: E402

INDEX = "films"
FRESH_FEATURES = ("age_days", "freshness", "num_year")  # what "freshness" means to a model here


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def bench_settings(home: Path, events_index: str) -> Settings:
    base = load_settings(ROOT / "hybridrank.toml")
    return base.model_copy(update={"home": home,
                                   "feedback": base.feedback.model_copy(update={"events_index": events_index})})


def simulate(loop: FeedbackLoop, split: str, sessions: int, *, users: int, seed: int,
             freshness: Any = None, propensity_sd: float = 0.0, click_model: str = "position-based") -> dict[str, Any]:
    started = time.perf_counter()
    report = loop.simulate(split, sessions, users=users, seed=seed, freshness=freshness,
                           propensity_sd=propensity_sd, click_model=click_model, progress=False)
    out = report.to_dict()
    out["seconds"] = round(time.perf_counter() - started, 1)
    if report.clicks_lost or report.searches_failed:
        log(f"  WARNING: {report.searches_failed} failed searches, {report.clicks_lost} lost clicks")
    log(f"  {sessions} sessions in {out['seconds']} s ({sessions / out['seconds']:.1f}/s), "
        f"{report.clicks_accepted} clicks accepted, {report.clicks_lost} lost")
    return out


def impressions(loop: FeedbackLoop, experiment: str | None = None) -> list[Any]:
    imps, orphans = loop.impressions(experiment)
    if orphans:
        log(f"  {orphans} orphan clicks")
    return imps


def offline_runs(settings: Settings, index: str, collection: Any, embedder: Any,
                 workdir: Path) -> tuple[Any, dict[str, Any]]:
    """The test split's feature log and the non-learned runs (bm25, dense, rrf, linear) from the same windows."""
    from connector.retrieval.retriever import Retriever
    from ltr.evaluation.learned import log_split
    from ltr.evaluation.metrics import retrieve_windows, run_from_windows

    client = make_client(settings)
    retriever = Retriever(client, index, settings.index(index), embedder)
    queries = collection.split_queries("test")
    windows = retrieve_windows(retriever, queries, ["bm25", "knn", "rrf", "linear"])
    runs = {mode: run_from_windows(w) for mode, w in windows.items()}
    test_log = log_split(retriever, collection, "test", workdir / "test.parquet",
                         request_time=datetime.now(UTC))
    train_log = log_split(retriever, collection, "train", workdir / "train.parquet",
                          request_time=datetime.now(UTC))
    client.close()
    return (test_log, train_log), runs


def score_run(model_dir: Path, test_log: Any) -> dict[str, dict[str, float]]:
    from ltr.evaluation.learned import model_scores, run_from_scores

    return run_from_scores(test_log, model_scores(model_dir, test_log))


def ctr_test(stats: Any) -> tuple[float, Any]:
    """(p, treatment - control) of the CTR comparison ``compute_stats`` already made (not a second test)."""
    comparison = next(c for c in stats.comparisons if c.metric == "ctr")
    return comparison.p_value, comparison.diff


def interleaving_of(stats: Any) -> Any:
    if stats.interleaving is None:
        raise RuntimeError(f"experiment {stats.experiment.id!r} has no interleaving summary")
    return stats.interleaving


def held_constant(training_set: Any, names: tuple[str, ...]) -> Any:
    """The same training set with ``names`` set to one constant: LightGBM cannot split on them."""
    log_ = training_set.log
    matrix = log_.matrix.copy()
    for name in names:
        if name in log_.feature_names:
            matrix[:, log_.feature_names.index(name)] = 0.0
    return replace(training_set, log=replace(log_, matrix=matrix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-sessions", type=int, default=6000)
    parser.add_argument("--ab-sessions", type=int, default=1500)
    parser.add_argument("--interleave-sessions", type=int, default=600)
    parser.add_argument("--aa-sessions", type=int, default=2000)
    parser.add_argument("--aa-salts", type=int, default=1000, help="Re-bucketings of each A/A run's traffic.")
    parser.add_argument("--aa-runs", type=int, default=4, help="Independent A/A traffic runs.")
    parser.add_argument("--fresh-sessions", type=int, default=5000)
    parser.add_argument("--fresh-ab-sessions", type=int, default=4000)
    parser.add_argument("--fresh-interleave-sessions", type=int, default=2000)
    parser.add_argument("--sections", default="1,2,3,4,5,6,7", help="Which parts to run (comma-separated).")
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--ab-propensity-sd", default="0,1",
                        help="Section 2 runs once per value: the spread of the users' click propensity "
                             "(0 = DESIGN.md's identical users; see ltr.clicks.simulated_users).")
    parser.add_argument("--power-resamples", type=int, default=300,
                        help="Cluster-bootstrap resamples for the sessions-for-80%%-power estimates.")
    parser.add_argument("--ab-index", default=INDEX)
    parser.add_argument("--ab-collection", default=None, help="Default: the films (hybridrank datasets films).")
    parser.add_argument("--sensitivity-index", default="scifact",
                        help="Sections 5-7: the indexed collection (BM25, linear fusion, LightGBM of its train split).")
    parser.add_argument("--sensitivity-collection", default=None,
                        help="Sections 5-7: its BEIR folder (default: the shared datasets' scifact).")
    parser.add_argument("--sensitivity-aa-runs", type=int, default=2000, help="Section 5: A/A experiments per method.")
    parser.add_argument("--sensitivity-replicates", type=int, default=200,
                        help="Section 5: experiments per point of a power curve (interleaving: twice this).")
    parser.add_argument("--rankings", type=Path, default=None,
                        help="Section 5: simulate on these captured lists instead of asking the endpoint.")
    parser.add_argument("--demo-repeats", type=int, default=10, help="Section 6: repeated demo-sized experiments.")
    parser.add_argument("--demo-sessions", type=int, default=1000, help="Section 6: searches per experiment.")
    parser.add_argument("--multileave-sessions", type=int, default=3000, help="Section 7: searches.")
    parser.add_argument("--multileave-max-sessions", type=int, default=15000,
                        help="Section 7: a second experiment sized to separate every pair, if it needs no more.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "feedback_loop.json")
    parser.add_argument("--keep-events", action="store_true",
                        help="Leave the run's events index in the cluster (its name is in the output) to study it.")
    args = parser.parse_args()
    sections = set(args.sections.split(","))

    from scipy.stats import binomtest

    from connector.embedding.embedder import embedder_from_settings
    from ltr.clicks.click_model import aggregate_clicks, click_stats_path, write_click_stats
    from ltr.clicks.simulated_users import EXAMINATION, FreshnessPreference
    from ltr.clicks.training_set import build_click_training_set, feature_set, live_feature_meta, train_from_clicks
    from ltr.evaluation.datasets import load_collection
    from ltr.evaluation.metrics import evaluate_runs
    from ltr.experiments.power import sessions_for_power, sessions_to_significance
    from ltr.experiments.report import render_report
    from ltr.experiments.stats import ab_test, compute_stats
    from ltr.training.registry import ModelRegistry
    from ltr.training.train import TrainConfig, train_model

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    base = load_settings(ROOT / "hybridrank.toml")
    home = Path(base.home) / "bench-loop"
    shutil.rmtree(home, ignore_errors=True)
    events_index = f"bench-events-{stamp.lower()}"
    settings = bench_settings(home, events_index)
    embedder = embedder_from_settings(base)  # the user's embedding cache
    films = sections & {"1", "2", "3", "4"} and not (sections == {"2"} and args.ab_collection)
    collection = load_collection(Path(base.home) / "datasets" / "films") if films else None
    registry = ModelRegistry(home)
    workdir = home / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"date": stamp, "index": INDEX, "events_index": events_index,
                               "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    if collection is not None:
        results["collection"] = {"docs": "films (bokeh-sampledata)",
                                 "train_queries": len(collection.split_queries("train")),
                                 "test_queries": len(collection.split_queries("test"))}
    started = time.perf_counter()

    if "1" in sections:
        log("offline: test/train feature logs and the non-learned runs")
        (test_log, train_log), runs = offline_runs(settings, INDEX, collection, embedder, workdir / INDEX)
        qrels = collection.qrels("test")

    with FeedbackLoop(settings, INDEX, collection, embedder) if sections & {"1", "3", "4"} else nullcontext() as loop:
        if "1" in sections:
            # -- 1. logging traffic, click model, click-trained rankers ----------------------------------
            log("1. logging traffic: A/B/C es / hybrid / rrf on the train queries")
            loop.experiment("logging", "ab", [("es", "es"), ("hybrid", "hybrid"), ("rrf", "rrf")])
            results["logging_traffic"] = simulate(loop, "train", args.log_sessions, users=args.users, seed=1)
            imps = impressions(loop)
            stats, pbm = aggregate_clicks(imps, prior_weight=settings.feedback.ctr_prior_weight, index=INDEX)
            write_click_stats(stats, click_stats_path(settings, INDEX))
            results["click_model"] = {
                "impressions": len(imps), "clicks": sum(len(i.clicks) for i in imps),
                "examination_fitted_rel_rank1": {str(k): round(v, 4) for k, v in sorted(pbm.examination.items())},
                "examination_true_rel_rank1": {str(i + 1): round(e / EXAMINATION[0], 4)
                                               for i, e in enumerate(EXAMINATION)},
                "em_iterations": pbm.iterations, "converged": pbm.converged,
            }
            log(f"  PBM examination (rel. rank 1): {results['click_model']['examination_fitted_rel_rank1']}")
            for policy in ("naive", "debiased"):
                tset = build_click_training_set(imps, policy=policy, prior_weight=settings.feedback.ctr_prior_weight,
                                                feature_meta=live_feature_meta(settings, INDEX, feature_set(imps)[0]))
                res = train_from_clicks(tset, workdir / f"clicks-{policy}", config=TrainConfig(seed=1))
                runs[f"clicks_{policy}"] = score_run(res.model_dir, test_log)
            report = evaluate_runs(qrels, runs, baseline="linear")
            results["click_trained"] = {"ndcg@10": {r: round(report.means[r]["ndcg@10"], 4) for r in report.runs},
                                        "p_vs_linear": {r: report.p_values.get(r, {}).get("ndcg@10")
                                                        for r in report.runs},
                                        "win_tie_loss_vs_linear": {r: report.win_tie_loss.get(r, {}).get("ndcg@10")
                                                                   for r in report.runs}}
            versus = evaluate_runs(qrels, {"clicks_naive": runs["clicks_naive"],
                                           "clicks_debiased": runs["clicks_debiased"]}, baseline="clicks_naive")
            results["click_trained"]["p_debiased_vs_naive"] = versus.p_values["clicks_debiased"]["ndcg@10"]
            log(f"  NDCG@10 {results['click_trained']['ndcg@10']}; debiased vs naive "
                f"p={results['click_trained']['p_debiased_vs_naive']:.3g}")

        if "3" in sections:
            # -- 3. A/A: false-positive rate --------------------------------------------------------------
            log("3. A/A: hybrid vs hybrid, re-bucketed with many salts")
            runs_aa: list[dict[str, Any]] = []
            all_p: list[float] = []
            for run in range(args.aa_runs):  # independent traffic per run; many salts re-bucket each
                aa = loop.experiment(f"aa-{run}", "ab", [("a", "hybrid"), ("b", "hybrid")])
                traffic = simulate(loop, "test", args.aa_sessions, users=args.users, seed=4 + 1000 * run)
                aa_imps = impressions(loop, aa.id)
                pvals = []
                for s in range(args.aa_salts):
                    salted, relabelled = resalted(aa, aa_imps, f"aa-salt-{s}")
                    pvals.append(ab_test(relabelled, salted)[0])
                p_arr = np.array(pvals)
                runs_aa.append({"traffic": traffic, "sessions": len(aa_imps), "experiments": len(pvals),
                                "false_positive_rate": float((p_arr < 0.05).mean()),
                                "p_quantiles": [float(q) for q in np.quantile(p_arr, [0.05, 0.25, 0.5, 0.75, 0.95])]})
                all_p.extend(pvals)
                log(f"  run {run + 1}: A/A false-positive rate at p<.05 {runs_aa[-1]['false_positive_rate']:.3f} "
                    f"over {len(pvals)} re-bucketings")
            pooled = np.array(all_p)
            rejections = int((pooled < 0.05).sum())
            interval = binomtest(rejections, len(pooled)).proportion_ci()
            results["aa"] = {"runs": runs_aa, "experiments": len(pooled),
                             "false_positive_rate": rejections / len(pooled),
                             # binomial over all re-bucketings: too narrow when the runs disagree
                             "false_positive_rate_ci95": [interval.low, interval.high],
                             "run_rates": [r["false_positive_rate"] for r in runs_aa]}
            log(f"  A/A false-positive rate at p<.05: {results['aa']['false_positive_rate']:.3f} over {len(pooled)}")

        if "4" in sections:
            # -- 4. freshness -----------------------------------------------------------------------------
            log("4. freshness: users who prefer recent films")
            fresh = FreshnessPreference(half_life_days=3650.0, weight=0.8, as_of=datetime(2015, 1, 1, tzinfo=UTC))
            loop.experiment("fresh-logging", "ab", [("es", "es"), ("hybrid", "hybrid"), ("rrf", "rrf")])
            results["fresh_logging_traffic"] = simulate(loop, "train", args.fresh_sessions, users=args.users, seed=5,
                                                             freshness=fresh)
            fresh_imps = impressions(loop, "fresh-logging")
            tset = build_click_training_set(fresh_imps, policy="debiased",
                                            prior_weight=settings.feedback.ctr_prior_weight,
                                            feature_meta=live_feature_meta(settings, INDEX, feature_set(fresh_imps)[0]))
            feature_meta_names = tset.log.feature_names
            with_fresh = train_from_clicks(tset, None, config=TrainConfig(seed=1),
                                           model_store=lambda mid: registry.model_dir(INDEX, mid))
            without = train_from_clicks(held_constant(tset, FRESH_FEATURES), None, config=TrainConfig(seed=1),
                                        model_store=lambda mid: registry.model_dir(INDEX, mid))
            gain = dict(with_fresh.importance)
            total = sum(gain.values()) or 1.0
            fresh_share = sum(gain.get(n, 0.0) for n in FRESH_FEATURES) / total
            fab = loop.experiment("fresh-ab", "ab", [("without", f"model:{without.contract.model_id}"),
                                                     ("with", f"model:{with_fresh.contract.model_id}")])
            results["fresh_ab_traffic"] = simulate(loop, "test", args.fresh_ab_sessions, users=args.users, seed=6,
                                                        freshness=fresh)
            fab_imps = impressions(loop, fab.id)
            fab_stats = compute_stats(fab_imps, fab)
            p, diff = ctr_test(fab_stats)
            results["freshness"] = {
                "features": feature_meta_names, "freshness_features": list(FRESH_FEATURES),
                "importance_share_with": round(fresh_share, 4),
                "importance_top": [(n, round(g / total, 4)) for n, g in with_fresh.importance[:8]],
                "ab": {"sessions": len(fab_imps),
                       "ctr": {v.name: v.metrics["ctr"].value for v in fab_stats.variants},
                       "ctr_diff_with_minus_without": diff.value, "ci": [diff.low, diff.high], "p": p,
                       "verdict": fab_stats.verdict},
            }
            render_report(fab_stats, ROOT / "bench" / "results" / "report-freshness-ab.html")
            log(f"  freshness importance share {fresh_share:.3f}; CTR with-without {diff.value:+.4f} (p={p:.3g})")
            fil = loop.experiment("fresh-interleave", "interleave",
                                  [("without", f"model:{without.contract.model_id}"),
                                   ("with", f"model:{with_fresh.contract.model_id}")])
            results["fresh_interleave_traffic"] = simulate(loop, "test", args.fresh_interleave_sessions,
                                                           users=args.users, seed=7, freshness=fresh)
            fil_imps = impressions(loop, fil.id)
            fil_stats = compute_stats(fil_imps, fil)
            fil_sum = interleaving_of(fil_stats)
            results["freshness"]["interleave"] = {
                "sessions": len(fil_imps), "wins_without": fil_sum.wins_a, "wins_with": fil_sum.wins_b,
                "ties": fil_sum.ties, "p": fil_sum.p_value, "preference_for_with": fil_sum.preference.value,
                "ctr": {v.name: v.metrics["ctr"].value for v in fil_stats.variants}, "verdict": fil_stats.verdict}
            render_report(fil_stats, ROOT / "bench" / "results" / "report-freshness-interleave.html")
            log(f"  interleaving with vs without: {fil_sum.wins_b} / {fil_sum.wins_a} wins (p={fil_sum.p_value:.3g})")

    if "2" in sections:
        # -- 2. A/B and interleaving: BM25 order vs a learned ranker ---------------------------------------
        log(f"2. {args.ab_index}: BM25 (es) vs LightGBM (train qrels): offline, A/B, interleaving")
        ab_collection = load_collection(args.ab_collection or Path(base.home) / "datasets" / "films")
        (test_log, train_log), runs = offline_runs(settings, args.ab_index, ab_collection, embedder,
                                                   workdir / args.ab_index)
        qrels = ab_collection.qrels("test")
        with FeedbackLoop(settings, args.ab_index, ab_collection, embedder) as loop:
            learned = train_model(train_log, None, config=TrainConfig(seed=1),
                                  model_store=lambda mid: registry.model_dir(args.ab_index, mid))
            model_id = learned.contract.model_id
            runs["ltr_qrels"] = score_run(learned.model_dir, test_log)
            offline = evaluate_runs(qrels, {"bm25": runs["bm25"], "ltr_qrels": runs["ltr_qrels"]}, baseline="bm25")
            offline_winner = max(("bm25", "ltr_qrels"), key=lambda r: offline.means[r]["ndcg@10"])
            variants = [("bm25", "es"), ("ltr", f"model:{model_id}")]
            results["bm25_vs_ltr_offline"] = {
                "index": args.ab_index, "ndcg@10": {r: round(offline.means[r]["ndcg@10"], 4) for r in offline.runs},
                "p": offline.p_values["ltr_qrels"]["ndcg@10"], "winner": offline_winner}
            for sd in (float(x) for x in args.ab_propensity_sd.split(",")):
                tag = "" if sd == 0 else f"-sd{sd:g}"
                log(f"  users' click propensity sd {sd:g}")
                ab = loop.experiment(f"bm25-vs-ltr-ab{tag}", "ab", variants)
                ab_traffic = simulate(loop, "test", args.ab_sessions, users=args.users, seed=2, propensity_sd=sd)
                ab_imps = impressions(loop, ab.id)
                ab_stats = compute_stats(ab_imps, ab)
                il = loop.experiment(f"bm25-vs-ltr-interleave{tag}", "interleave", variants)
                il_traffic = simulate(loop, "test", args.interleave_sessions, users=args.users, seed=3,
                                      propensity_sd=sd)
                il_imps = impressions(loop, il.id)
                il_stats = compute_stats(il_imps, il)
                ab_p, ab_diff = ctr_test(ab_stats)
                il_sum = interleaving_of(il_stats)
                ab_needed = sessions_to_significance(ab_imps, ab)
                il_needed = sessions_to_significance(il_imps, il)
                ab_power = sessions_for_power(ab_imps, ab, resamples=args.power_resamples)
                il_power = sessions_for_power(il_imps, il, resamples=args.power_resamples)
                il_power_credit = sessions_for_power(il_imps, il, resamples=args.power_resamples,
                                                     interleave_test="credit")
                ab_pick = "ltr" if ab_diff.value > 0 else "bm25"
                il_pick = "ltr" if il_sum.wins_b > il_sum.wins_a else "bm25"
                results[f"bm25_vs_ltr{tag.replace('-', '_')}"] = {
                    "user_propensity_sd": sd, "offline_winner": offline_winner,
                    "ab_traffic": ab_traffic, "interleave_traffic": il_traffic,
                    "ab": {"sessions": len(ab_imps), "ctr_diff_ltr_minus_bm25": ab_diff.value,
                           "ci": [ab_diff.low, ab_diff.high], "p": ab_p, "picks": ab_pick,
                           "sessions_to_significance": ab_needed, "sessions_for_80pct_power": ab_power.sessions,
                           "power_curve": ab_power.curve, "verdict": ab_stats.verdict},
                    "interleave": {"sessions": len(il_imps), "wins_bm25": il_sum.wins_a, "wins_ltr": il_sum.wins_b,
                                   "ties": il_sum.ties, "p": il_sum.p_value, "picks": il_pick,
                                   "sessions_to_significance": il_needed,
                                   "sessions_for_80pct_power": il_power.sessions,
                                   "power_curve": il_power.curve, "verdict": il_stats.verdict,
                                   "click_difference_t": {"sessions_for_80pct_power": il_power_credit.sessions,
                                                          "power_curve": il_power_credit.curve}},
                    "sessions_ratio_ab_over_interleave": (ab_needed / il_needed) if ab_needed and il_needed else None,
                    "power_sessions_ratio_ab_over_interleave": (ab_power.sessions / il_power.sessions
                                                                if ab_power.sessions and il_power.sessions else None),
                    "power_sessions_ratio_ab_over_interleave_click_difference_t": (
                        ab_power.sessions / il_power_credit.sessions
                        if ab_power.sessions and il_power_credit.sessions else None),
                }
                stem = f"report-{args.ab_index}-bm25-vs-ltr{tag}"
                render_report(ab_stats, ROOT / "bench" / "results" / f"{stem}-ab.html")
                render_report(il_stats, ROOT / "bench" / "results" / f"{stem}-interleave.html")
                log(f"  offline winner {offline_winner}; A/B picks {ab_pick} (p={ab_p:.3g}, significant after "
                    f"{ab_needed}); interleaving picks {il_pick} (p={il_sum.p_value:.3g}, significant after "
                    f"{il_needed}); searches for 80% power: A/B {ab_power.sessions}, interleaving {il_power.sessions} "
                    f"(sign test; {il_power_credit.sessions} with a t-test of the click difference)")

    if sections & {"5", "6", "7"}:
        from bench.feedback_sensitivity import sensitivity_sections

        results["sensitivity"] = sensitivity_sections(args, sections, settings, base, embedder, registry, workdir,
                                                      log=log)

    results["seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    log(f"wrote {args.out} ({results['seconds']} s)")
    if args.keep_events:
        log(f"kept the events index {events_index}")
        return
    if sections == {"5"} and args.rankings is not None:  # offline on saved lists: no node was used
        return
    client = make_client(settings)
    client.options(ignore_status=404).indices.delete(index=events_index)
    client.close()


if __name__ == "__main__":
    main()
