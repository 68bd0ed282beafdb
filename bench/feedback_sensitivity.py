"""Sections 5-7 of bench/bench_feedback_loop.py: how sensitive each comparison is, on SciFact.

5. sensitivity: BM25 (``es``), linear fusion (``hybrid``) and LightGBM (trained on the train
   queries' qrels) rank every test query once through the real endpoint (``X-Hybridrank-Variant``);
   those lists are written to ``bench/results/scifact_rankings.json``. Then, per click model, the
   methods' sessions for 80% power and A/A rejection rates are simulated offline on those fixed lists
   (``ltr.experiments.sensitivity``): bucketed A/B, A/B with CUPED, and each credit rule of
   ``ltr.experiments.credit`` (team-draft, skipping the shared prefix, click-gap weighted);
6. demo repeats: the demo's interleaving experiment (BM25 order vs LightGBM, 1,000 searches by 200
   navigational users) through the real endpoint, 10 times with different seeds: how often p < .05
   picks LightGBM (the offline winner), under every credit rule (the demo's headline: ``HEADLINE_RULE``);
7. a three-ranker team-draft multileaving experiment (BM25, linear fusion, LightGBM) through the real
   endpoint: do its Holm-corrected pair verdicts order the rankers as offline NDCG@10 does?
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SENSITIVITY_MODELS: dict[str, tuple[str, float]] = {  # result name -> (click model, propensity sd)
    "navigational": ("navigational", 0.0), "informational": ("informational", 0.0), "perfect": ("perfect", 0.0),
    "position-based": ("position-based", 0.0), "cascade": ("cascade", 0.0),
    "navigational-heterogeneous": ("navigational", 1.0),
}
SCALED = ("ab", "ab_cuped")  # sessions in the tens of thousands: scaled from a pilot, then measured


def capture_rankings(url: str, index: str, queries: Mapping[str, str], rankers: Mapping[str, str],
                     fields: Sequence[str], depth: int = 10) -> dict[str, list[list[str]]]:
    """Each ranker's top ``depth`` ids per query, asked of the endpoint with an explicit variant."""
    from elasticsearch import Elasticsearch

    from connector.endpoint.wire import VARIANT_HEADER

    client = Elasticsearch(url, request_timeout=60)
    out: dict[str, list[list[str]]] = {}
    try:
        for name, ranker in rankers.items():
            lists = []
            for text in queries.values():
                body: dict[str, Any] = {"query": {"multi_match": {"query": text, "fields": list(fields)}},
                                        "size": depth, "source": False}
                resp = client.options(headers={VARIANT_HEADER: ranker}).search(index=index, **body)
                lists.append([str(h["_id"]) for h in resp["hits"]["hits"]])
            out[name] = lists
    finally:
        client.close()
    return out


def arenas(rankings: Mapping[str, Any], *, control: str, treatment: str) -> Callable[[str], Any]:
    """The ``Arena`` of each named user model (``SENSITIVITY_MODELS``) on the captured lists: ``control`` vs
    ``treatment`` interleaved, and ``control`` vs its null pair (seed 2026) for the A/A runs."""
    from ltr.clicks.user_models import make_click_model
    from ltr.experiments.interleaved_lists import interleavings, null_pair
    from ltr.experiments.sensitivity import Arena
    from ltr.experiments.simulation import RankedLists

    queries = tuple(rankings["queries"])
    ranked = RankedLists(queries, rankings["lists"], rankings["levels"])
    levels = [ranked.levels.get(q, {}) for q in queries]
    lists_a, lists_b = ranked.lists[control], ranked.lists[treatment]
    rng = np.random.default_rng(2026)
    nulls = [null_pair(a, lv, rng) for a, lv in zip(lists_a, levels, strict=True)]
    interleaved, null_interleaved = interleavings(lists_a, lists_b, levels), interleavings(lists_a, nulls, levels)

    def arena(name: str) -> Any:
        model_name, spread = SENSITIVITY_MODELS[name]
        return Arena(ranked.level_matrix(control), ranked.level_matrix(treatment), interleaved, null_interleaved,
                     make_click_model(model_name, propensity_sd=spread), propensity_sd=spread)

    return arena


def aa_recheck(rankings: Mapping[str, Any], cells: Sequence[tuple[str, str]], *, runs: int, sessions: int,
               seed: int, control: str = "bm25", treatment: str = "lightgbm") -> dict[str, Any]:
    """Independent A/A experiments (another seed than section 5's) of chosen (user model, method) cells: is a
    2,000-run rate near or outside 5%'s interval chance, or the method's? (rate and its 95% interval)."""
    from scipy.stats import binomtest

    from ltr.experiments.sensitivity import aa_rate, method_pvalues

    arena_of = arenas(rankings, control=control, treatment=treatment)
    out: dict[str, Any] = {}
    for model, method in cells:
        rate = aa_rate(method_pvalues(arena_of(model), method, null=True), sessions, runs=runs, seed=seed)
        interval = binomtest(round(rate * runs), runs, 0.05).proportion_ci()
        out.setdefault(model, {})[method] = {"aa_rate": rate, "aa_runs": runs, "aa_sessions": sessions,
                                             "ci95": [round(interval.low, 4), round(interval.high, 4)]}
    return out


def multileave_aa(rankings: Mapping[str, Any], models: Sequence[str], *, runs: int, sessions: int, seed: int,
                  sequences: int = 1024, ranker: str = "bm25", third: str = "null_pair") -> dict[str, Any]:
    """A/A of team-draft multileaving's per-pair tests: three equally good rankers (``ranker``'s lists, a null
    pair of them, and a third: another null pair, or with ``third="disjoint"`` the same levels on documents no
    other ranker has), ``sequences`` multileavings per query (seeded), ``runs`` experiments of ``sessions``
    searches per user model: each pair's rejection rate at p < .05 (before Holm) under the sign test
    (``multileave``) and the click-gap credit (``multileave_click_gap``)."""
    from ltr.clicks.user_models import make_click_model
    from ltr.experiments.credit import click_difference, click_gap_weights, mean_test_p, sign_test_p
    from ltr.experiments.interleaved_lists import null_pair
    from ltr.experiments.simulation import RankedLists
    from ltr.experiments.team_draft import shared_prefix, team_draft_multileave

    queries = tuple(rankings["queries"])
    ranked = RankedLists(queries, rankings["lists"], rankings["levels"])
    shape = (len(queries), sequences, ranked.depth)
    levels, teams = np.zeros(shape, dtype=np.int64), np.full(shape, -1, dtype=np.int64)
    shared = np.zeros((len(queries), ranked.depth), dtype=bool)
    rng = np.random.default_rng(2026)
    for q, qid in enumerate(queries):
        judged = dict(ranked.levels.get(qid, {}))
        base = list(ranked.lists[ranker][q])[: ranked.depth]
        lists = [base, null_pair(base, judged, rng), null_pair(base, judged, rng)]
        if third == "disjoint":  # nothing in common with the first two: it takes no document from either
            lists[2] = [f"disjoint-{doc}" for doc in base]
            judged.update({f"disjoint-{doc}": judged.get(doc, 0) for doc in base})
        shared[q, : shared_prefix(lists)] = True
        for s in range(sequences):
            docs, labels = team_draft_multileave(lists, seed=f"{seed}-{q}-{s}", length=ranked.depth)
            for k, (doc, label) in enumerate(zip(docs, labels, strict=True)):
                levels[q, s, k], teams[q, s, k] = judged.get(doc, 0), ord(label) - ord("A")
    out: dict[str, Any] = {}
    for name in models:
        model_name, spread = SENSITIVITY_MODELS[name]
        draw = np.random.default_rng([seed, len(out)])
        q = draw.integers(0, len(queries), runs * sessions)
        s = draw.integers(0, sequences, runs * sessions)
        clicks = make_click_model(model_name, propensity_sd=spread).click_matrix(levels[q, s], draw)
        shown, outside = teams[q, s], ~shared[q]
        weights = click_gap_weights(clicks, shown)
        rates: dict[str, Any] = {}
        for i, j in ((0, 1), (0, 2), (1, 2)):
            pair = np.where(shown == i, 0, np.where(shown == j, 1, -1))
            p_sign, _ = sign_test_p(np.sign(click_difference(clicks, pair)).reshape(runs, sessions))
            p_gap, _ = mean_test_p(click_difference(clicks, pair, outside, weights).reshape(runs, sessions))
            rates[f"{j} vs {i}"] = {"multileave": float(np.mean(p_sign < 0.05)),
                                    "multileave_click_gap": float(np.mean(p_gap < 0.05))}
        out[name] = rates
    return out


def sensitivity(rankings: Mapping[str, Any], *, control: str, treatment: str, aa_runs: int, aa_sessions: int,
                replicates: int, log: Callable[[str], None], models: Sequence[str] = tuple(SENSITIVITY_MODELS),
                ) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, Any]]:
    """({model: {method: {sessions_80, aa_rate, aa_runs}}}, details: power curves and timings)."""
    import time

    from ltr.experiments.sensitivity import METHODS, aa_rate, method_pvalues, scaled_sessions, sessions_for_power

    arena_of = arenas(rankings, control=control, treatment=treatment)
    queries = tuple(rankings["queries"])
    shared_top = float(np.mean(arena_of(models[0]).interleaved.shared[:, 0])) if models else 0.0
    table: dict[str, dict[str, dict[str, Any]]] = {}
    details: dict[str, Any] = {"queries": len(queries), "control": control, "treatment": treatment,
                               "share_of_queries_with_shared_rank_1": round(shared_top, 4),
                               "aa_sessions": aa_sessions, "power_replicates": replicates, "models": {}}
    for name in models:
        model_name, spread = SENSITIVITY_MODELS[name]
        arena = arena_of(name)
        table[name], details["models"][name] = {}, {"click_model": model_name, "propensity_sd": spread}
        for method in METHODS:
            started = time.perf_counter()
            effect = method_pvalues(arena, method)
            sessions: int | None
            if method in SCALED:
                sessions, curve = scaled_sessions(effect, replicates=replicates)
            else:
                sessions, curve = sessions_for_power(effect, replicates=2 * replicates)
            rate = aa_rate(method_pvalues(arena, method, null=True), aa_sessions, runs=aa_runs)
            table[name][method] = {"sessions_80": sessions, "aa_rate": round(rate, 4), "aa_runs": aa_runs}
            details["models"][name][method] = {"power_curve": curve, "seconds": round(time.perf_counter() - started, 1),
                                               "estimate": "scaled from a pilot" if method in SCALED else "bisection"}
            log(f"  {name:>26} {method:>24}: sessions for 80% power {sessions}, A/A {rate:.4f} ({aa_runs} runs)")
    return table, details


def write_sensitivity(path: Path, *, click_models: dict[str, Any] | None = None,
                      demo_repeats: dict[str, Any] | None = None) -> None:
    """bench/results/sensitivity.json: ``click_models`` and ``demo_repeats``, each kept if not given; ``measured``
    says when each part written now was measured and the machine's load average (1, 5, 15 min) then."""
    import os
    from datetime import UTC, datetime

    current: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    measured = dict(current.get("measured", {}))
    stamp = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "load_average": [round(x, 2) for x in os.getloadavg()]}
    for part, value in (("click_models", click_models), ("demo_repeats", demo_repeats)):
        if value is not None:
            measured[part] = stamp
    out = {"click_models": click_models if click_models is not None else current.get("click_models", {}),
           "demo_repeats": demo_repeats if demo_repeats is not None else current.get("demo_repeats", {}),
           "measured": measured}
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


def demo_repeats_record(repeats: Mapping[str, Any], sessions: int) -> dict[str, Any]:
    """``demo_repeats`` of sensitivity.json: ``runs``, ``picked_offline_winner`` (by the demo's headline
    rule, ``HEADLINE_RULE``), the same count per credit rule, and each run's p and wins."""
    from ltr.experiments.credit import HEADLINE_RULE

    runs = repeats["runs"]
    return {"runs": len(runs), "picked_offline_winner": repeats["picked_by_method"].get(HEADLINE_RULE),
            "headline_method": HEADLINE_RULE, "click_model": "navigational", "searches_per_run": sessions,
            "users_per_run": 200, "picked_offline_winner_by_method": repeats["picked_by_method"],
            "per_run": [{"wins_lightgbm": r["wins_lightgbm"], "wins_bm25": r["wins_bm25"], "ties": r["ties"],
                         "p": {name: m["p"] for name, m in r["methods"].items()},
                         "delta": {name: m["delta"] for name, m in r["methods"].items()}} for r in runs]}


def _offline(settings: Any, index: str, collection: Any, embedder: Any, registry: Any, workdir: Path,
             log: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    """Train LightGBM on the train split (seed 1) into the bench registry; (model id, offline NDCG@10 of
    bm25 / linear / lightgbm on the test split with paired p-values)."""
    from datetime import UTC, datetime

    from connector.client import make_client
    from connector.retrieval.retriever import Retriever
    from ltr.evaluation.learned import log_split, model_scores, run_from_scores
    from ltr.evaluation.metrics import evaluate_runs, retrieve_windows, run_from_windows
    from ltr.training.train import TrainConfig, train_model

    client = make_client(settings)
    try:
        retriever = Retriever(client, index, settings.index(index), embedder)
        windows = retrieve_windows(retriever, collection.split_queries("test"), ["bm25", "linear"])
        runs = {mode: run_from_windows(w) for mode, w in windows.items()}
        moment = datetime.now(UTC)
        test_log = log_split(retriever, collection, "test", workdir / "test.parquet", request_time=moment)
        train_log = log_split(retriever, collection, "train", workdir / "train.parquet", request_time=moment)
    finally:
        client.close()
    learned = train_model(train_log, None, config=TrainConfig(seed=1),
                          model_store=lambda mid: registry.model_dir(index, mid))
    runs["lightgbm"] = run_from_scores(test_log, model_scores(learned.model_dir, test_log))
    report = evaluate_runs(collection.qrels("test"), runs, baseline="bm25")
    offline = {"ndcg@10": {r: round(report.means[r]["ndcg@10"], 4) for r in report.runs},
               "p_vs_bm25": {r: report.p_values.get(r, {}).get("ndcg@10") for r in report.runs}}
    log(f"  offline NDCG@10 {offline['ndcg@10']} (LightGBM {learned.contract.model_id})")
    return learned.contract.model_id, offline


def sensitivity_sections(args: Any, sections: set[str], settings: Any, base: Any, embedder: Any, registry: Any,
                         workdir: Path, *, log: Callable[[str], None]) -> dict[str, Any]:
    """Sections 5-7 (module docstring); writes bench/results/sensitivity.json (and the captured lists)."""
    from ltr.clicks.feedback_loop import FeedbackLoop, collection_top_grade
    from ltr.clicks.simulated_users import relative_level
    from ltr.evaluation.datasets import load_collection, shared_datasets_dir
    from ltr.experiments.stats import compute_stats

    results_dir = Path(__file__).resolve().parent / "results"
    out_path = results_dir / "sensitivity.json"
    index = args.sensitivity_index
    collection = load_collection(args.sensitivity_collection or shared_datasets_dir() / index)
    out: dict[str, Any] = {"index": index}

    def offline_sensitivity(rankings: Mapping[str, Any]) -> None:
        log("5. sensitivity on the fixed lists, per click model (offline, vectorised)")
        table, out["details"] = sensitivity(rankings, control="bm25", treatment="lightgbm",
                                            aa_runs=args.sensitivity_aa_runs, aa_sessions=args.demo_sessions,
                                            replicates=args.sensitivity_replicates, log=log)
        write_sensitivity(out_path, click_models=table)
        (results_dir / "sensitivity_details.json").write_text(json.dumps(out["details"], indent=2) + "\n",
                                                               encoding="utf-8")

    if "5" in sections and args.rankings is not None:
        out["rankings"] = str(args.rankings)
        offline_sensitivity(json.loads(args.rankings.read_text(encoding="utf-8")))
    if sections & {"6", "7"} or ("5" in sections and args.rankings is None):
        log(f"5-7. {index}: LightGBM on the train split, offline NDCG@10 of the three rankers")
        model_id, out["offline"] = _offline(settings, index, collection, embedder, registry, workdir / index, log)
        rankers = {"bm25": "es", "linear": "hybrid", "lightgbm": f"model:{model_id}"}
        top = collection_top_grade(collection)
        queries = collection.split_queries("test")
        with FeedbackLoop(settings, index, collection, embedder) as loop:
            if "5" in sections and args.rankings is None:
                log("5. capturing each ranker's top 10 of every test query through the endpoint")
                fields = list(settings.index(index).text_fields)
                lists = capture_rankings(loop.url, index, queries, rankers, fields)
                qrels = collection.qrels("test")
                rankings = {"index": index, "model_id": model_id, "rankers": rankers, "queries": list(queries),
                            "lists": lists, "levels": {q: {d: relative_level(g, top) for d, g in judged.items()}
                                                       for q, judged in qrels.items()}}
                path = results_dir / f"{index}_rankings.json"
                path.write_text(json.dumps(rankings) + "\n", encoding="utf-8")
                out["rankings"] = str(path.relative_to(results_dir.parent.parent))
                offline_sensitivity(rankings)  # before the slow endpoint sections: the endpoint idles meanwhile
            if "6" in sections:
                out["demo_repeats"] = repeats = _demo_repeats(loop, args, rankers, compute_stats, log)
                write_sensitivity(out_path, demo_repeats=demo_repeats_record(repeats, args.demo_sessions))
            if "7" in sections:
                out["multileave"] = _multileave(loop, args, rankers, out["offline"]["ndcg@10"], compute_stats, log)
    return out


def _demo_repeats(loop: Any, args: Any, rankers: Mapping[str, str], compute_stats: Any,
                  log: Callable[[str], None]) -> dict[str, Any]:
    """The demo's experiment ``args.demo_repeats`` times: per run each credit rule's p, Δ and whether it
    picked LightGBM (p < .05 in its favour); how many runs each rule picked it in."""
    log(f"6. {args.demo_repeats} demo-sized interleaving experiments (BM25 vs LightGBM, {args.demo_sessions} "
        "searches by 200 navigational users each)")
    runs = []
    for run in range(args.demo_repeats):
        exp = loop.experiment(f"demo-repeat-{run}", "interleave", [("bm25", rankers["bm25"]),
                                                                    ("lightgbm", rankers["lightgbm"])])
        loop.simulate("test", args.demo_sessions, users=200, seed=100 + run, click_model="navigational",
                      propensity_sd=0.0, progress=False)
        imps, _ = loop.impressions(exp.id)
        stats = compute_stats(imps, exp)
        il = stats.interleaving
        row = {"searches": il.outcomes, "wins_bm25": il.wins_a, "wins_lightgbm": il.wins_b, "ties": il.ties,
               "p": il.p_value, "methods": {m.method: {"p": m.p_value, "delta": m.effect.value,
                                                       "picked_lightgbm": bool(m.significant and m.effect.value > 0)}
                                            for m in stats.methods}}
        runs.append(row)
        log(f"  run {run + 1}: LightGBM {il.wins_b} / BM25 {il.wins_a} wins; " + ", ".join(
            f"{name} p={m['p']:.3g}" for name, m in row["methods"].items()))
    return {"runs": runs, "picked_by_method": {name: sum(r["methods"][name]["picked_lightgbm"] for r in runs)
                                               for name in runs[0]["methods"]} if runs else {}}


def _multileave(loop: Any, args: Any, rankers: Mapping[str, str], ndcg: Mapping[str, float], compute_stats: Any,
                log: Callable[[str], None]) -> dict[str, Any]:
    """The three-ranker experiment at ``args.multileave_sessions``; when the headline rule leaves a pair
    undecided and its searches needed (at the observed effect) fit ``args.multileave_max_sessions``, a
    second, independent experiment of that size (×1.25)."""
    first = _multileave_run(loop, "multileave-3", args.multileave_sessions, 7, rankers, ndcg, compute_stats, log)
    out = {"first": first}
    needed = [p["sessions_needed"] for p in first["methods"]["multileave_click_gap"]["pairs"]
              if not p["significant"]]
    if needed and all(n is not None for n in needed):
        sessions = round(1.25 * max(needed))
        if sessions <= args.multileave_max_sessions:
            out["second"] = _multileave_run(loop, "multileave-3-sized", sessions, 8, rankers, ndcg, compute_stats,
                                            log)
        else:
            log(f"  {sessions} searches needed: more than --multileave-max-sessions {args.multileave_max_sessions}")
            out["second_needed"] = sessions
    return out


def _multileave_run(loop: Any, name: str, sessions: int, seed: int, rankers: Mapping[str, str],
                    ndcg: Mapping[str, float], compute_stats: Any, log: Callable[[str], None]) -> dict[str, Any]:
    log(f"7. team-draft multileaving of {', '.join(rankers)} ({sessions} navigational searches)")
    exp = loop.experiment(name, "interleave", list(rankers.items()))
    loop.simulate("test", sessions, users=max(400, sessions // 5), seed=seed, click_model="navigational",
                  propensity_sd=0.0, progress=False)
    imps, _ = loop.impressions(exp.id)
    stats = compute_stats(imps, exp)
    methods: dict[str, Any] = {}
    for m in stats.methods:
        pairs = methods.setdefault(m.method, {"pairs": []})["pairs"]
        pairs.append({"control": m.control, "treatment": m.treatment, "delta": m.effect.value,
                      "ci": [m.effect.low, m.effect.high], "p": m.p_value, "p_holm": m.p_adjusted,
                      "significant": m.significant, "sessions_needed": m.sessions_needed,
                      "offline_delta": round(ndcg[m.treatment] - ndcg[m.control], 4)})
        log(f"  {m.method}: {m.treatment} vs {m.control}: Δ={m.effect.value:+.3f} p(Holm)={m.p_adjusted:.3g}; "
            f"offline ΔNDCG {ndcg[m.treatment] - ndcg[m.control]:+.4f}; searches needed {m.sessions_needed}")
    for summary in methods.values():
        summary["order_agrees_with_offline"] = all((p["delta"] > 0) == (p["offline_delta"] > 0)
                                                   for p in summary["pairs"])
        summary["every_pair_significant"] = all(p["significant"] for p in summary["pairs"])
        summary["orders_as_offline"] = summary["order_agrees_with_offline"] and summary["every_pair_significant"]
    return {"searches": stats.impressions, "methods": methods, "verdict": stats.verdict}


def main() -> None:
    """``python bench/feedback_sensitivity.py --rankings R --runs N MODEL:METHOD …``: ``aa_recheck`` of those
    cells, written to bench/results/sensitivity_aa_recheck.json; with ``--multileave`` the arguments are user
    models and ``multileave_aa`` runs instead (bench/results/sensitivity_multileave_aa.json); with ``--pairs``
    they are user models and ``sensitivity`` runs on those ranker pairs (sensitivity_pairs.json). All record
    the load average."""
    import argparse
    import os
    from datetime import UTC, datetime

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("cells", nargs="+", help="model:method, e.g. perfect:team_draft_skip_prefix (or models)")
    parser.add_argument("--rankings", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--multileave", action="store_true", help="Three equally good rankers, per-pair A/A.")
    parser.add_argument("--pairs", default=None,
                        help="control:treatment,… : section 5's table for these ranker pairs instead (the arguments "
                             "are user models), written to sensitivity_pairs.json.")
    parser.add_argument("--multileave-third", choices=["null_pair", "disjoint"], default="null_pair",
                        help="--multileave: the third ranker, a null pair of the first or disjoint documents.")
    args = parser.parse_args()
    rankings = json.loads(args.rankings.read_text(encoding="utf-8"))
    started = datetime.now(UTC)
    if args.pairs:
        result = {}
        for pair in args.pairs.split(","):
            control, treatment = pair.split(":", 1)
            result[f"{treatment} vs {control}"], _ = sensitivity(
                rankings, control=control, treatment=treatment, aa_runs=2000, aa_sessions=args.sessions,
                replicates=200, log=print, models=args.cells)
        name = "sensitivity_pairs.json"
    elif args.multileave:
        result = multileave_aa(rankings, args.cells, runs=args.runs, sessions=args.sessions, seed=args.seed,
                               third=args.multileave_third)
        name = "sensitivity_multileave_aa" + ("_disjoint" if args.multileave_third == "disjoint" else "") + ".json"
    else:
        cells = [tuple(c.split(":", 1)) for c in args.cells]
        result = aa_recheck(rankings, [(m, x) for m, x in cells], runs=args.runs, sessions=args.sessions,
                            seed=args.seed)
        name = "sensitivity_aa_recheck.json"
    out = {"rankings": str(args.rankings), "seed": args.seed, "runs": args.runs, "sessions": args.sessions,
           "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "cells": result}
    path = Path(__file__).resolve().parent / "results" / name
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
