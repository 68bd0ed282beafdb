"""Events in a real events index -> `clicks aggregate` -> statistics on disk -> `train --from-events`."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.events.schema import EVENTS_MAPPING, click_event_id
from hybridrank.cli.main import cli
from hybridrank.config import IndexConfig, Settings, load_settings
from ltr.clicks.click_model import load_click_stats
from ltr.clicks.pbm import DESIGN_EXAMINATION

T0 = datetime(2025, 5, 1, tzinfo=UTC)
INDEX = "clicks-corpus"
GRADE_CLICK = {g: 0.1 + 0.9 * (2**g - 1) / 15 for g in range(5)}


def synthetic_events(names: list[str], *, queries: int = 8, per_query: int = 25, seed: int = 5
                     ) -> tuple[list[dict[str, Any]], dict[tuple[str, str], int]]:
    """Impressions (10 of 12 docs, a fixed order 70% of the time) with logged features, and PBM clicks."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    truth: dict[tuple[str, str], int] = {}
    n = 0
    for k in range(per_query):
        for q in range(queries):
            pool = [f"doc-{q}-{i}" for i in range(12)]
            if k == 0:
                for d in pool:
                    truth[(f"query {q}", d)] = rng.choice([0, 0, 1, 2, 3, 4])
            fixed = sorted(pool)[:10]
            shown = fixed if rng.random() < 0.7 else rng.sample(pool, 10)
            when = T0 + timedelta(hours=n)
            rid = f"req-{q}-{k}"
            n += 1
            hits = []
            for pos, d in enumerate(shown, start=1):
                grade = truth[(f"query {q}", d)]
                vector: list[float | None] = [rng.random() for _ in names]
                vector[0] = grade + rng.gauss(0, 0.5)
                if rng.random() < 0.3:
                    vector[-1] = None  # a missing value travels as null
                hits.append({"doc_id": d, "position": pos, "team": None, "features": vector})
            events.append({"event_id": f"imp-{rid}", "type": "impression", "@timestamp": when.isoformat(),
                           "request_id": rid, "user_id": f"u{k % 5}", "index": INDEX, "query": f"Query {q}",
                           "ranker": "model:x", "feature_names": names, "hits": hits})
            for pos, d in enumerate(shown, start=1):
                if rng.random() < DESIGN_EXAMINATION[pos - 1] * GRADE_CLICK[truth[(f"query {q}", d)]]:
                    events.append({"event_id": click_event_id(rid, d), "type": "click", "request_id": rid,
                                   "@timestamp": (when + timedelta(seconds=30)).isoformat(), "doc_id": d})
    # noise the aggregation must not count: another index's impression, and an orphan click
    events.append({"event_id": "imp-other", "type": "impression", "@timestamp": T0.isoformat(),
                   "request_id": "req-other", "index": "another-index", "query": "Query 0",
                   "hits": [{"doc_id": "doc-0-0", "position": 1}]})
    events.append({"event_id": click_event_id("req-missing", "x"), "type": "click", "request_id": "req-missing",
                   "@timestamp": T0.isoformat(), "doc_id": "x"})
    return events, truth


@pytest.fixture()
def events_index(es: Any, fresh_index: str) -> tuple[str, dict[tuple[str, str], int], int]:
    from elasticsearch import helpers

    names = default_names()
    events, truth = synthetic_events(names)
    es.indices.create(index=fresh_index, mappings=EVENTS_MAPPING)
    ok, errors = helpers.bulk(es, ({"_index": fresh_index, "_id": e["event_id"], "_source": e} for e in events),
                              raise_on_error=False)
    assert not errors and ok == len(events)
    return fresh_index, truth, len(events)


def default_names() -> list[str]:
    """The features an index without its own list is served with (so a trained model can serve)."""
    from features.pipeline import FeaturePipeline

    return FeaturePipeline.from_config(IndexConfig()).names


def config_file(tmp_path: Path, events_index: str) -> Path:
    path = tmp_path / "hybridrank.toml"
    path.write_text(f'home = "{tmp_path / "home"}"\n\n[feedback]\nevents_index = "{events_index}"\n'
                    "ctr_prior_weight = 5.0\n", encoding="utf-8")
    return path


def test_aggregate_writes_stats_that_load_back(events_index: tuple[str, dict[tuple[str, str], int], int],
                                               tmp_path: Path, es_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    name, truth, count = events_index
    assert count > 300
    monkeypatch.setenv("ES_URL", es_url)
    monkeypatch.delenv("HYBRIDRANK_HOME", raising=False)  # the config's own home, whatever the shell exports
    config = config_file(tmp_path, name)
    settings: Settings = load_settings(config)
    assert load_click_stats(settings, INDEX) is None
    result = CliRunner().invoke(cli, ["--config", str(config), "clicks", "aggregate", "--index", INDEX,
                                      "--as-of", "2025-06-01T00:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "200 impressions" in result.output and "1 orphan clicks" in result.output
    assert "examination probability" in result.output
    stats = load_click_stats(settings, INDEX)
    assert stats is not None
    assert stats.impressions == 2000 and stats.index == INDEX and stats.prior_weight == 5.0
    assert stats.until == datetime(2025, 6, 1, tzinfo=UTC)
    assert stats.examination[1] == 1.0 and stats.examination[10] < stats.examination[2]
    assert ("query 0", "doc-0-0") in stats.pairs
    assert stats.info["orphan_clicks"] == 1
    # the statistics answer the serving-time query text, normalised the same way
    assert stats.ctr("  QUERY 0 ", "doc-0-0") == stats.ctr("query 0", "doc-0-0") is not None
    assert stats.ctr("query 0", "doc-5-0") is None
    # more relevant documents have a higher debiased CTR on average
    by_grade: dict[int, list[float]] = {}
    for (q, d), g in truth.items():
        value = stats.ctr(q, d)
        if value is not None:
            by_grade.setdefault(g, []).append(value)
    means = [sum(v) / len(v) for _, v in sorted(by_grade.items())]
    assert means[0] < means[-1] and not any(math.isnan(m) for m in means)
    assert (tmp_path / "home" / "clicks" / f"{INDEX}-examination.png").stat().st_size > 1000

    # a window that holds no event is a plain message, and keeps the old statistics
    empty = CliRunner().invoke(cli, ["--config", str(config), "clicks", "aggregate", "--index", INDEX,
                                     "--since", "2030-01-01", "--until", "2030-02-01", "--no-plot"])
    assert empty.exit_code == 1 and "no impressions" in empty.output
    assert load_click_stats(settings, INDEX) is not None

    # train from the same events, register, and find the model serving
    trained = CliRunner().invoke(cli, ["--config", str(config), "train", "--from-events", "--index", INDEX,
                                       "--labels", "debiased", "--cv-folds", "0", "--num-boost-round", "40",
                                       "--param", "min_data_in_leaf=5", "--param", "num_threads=1", "--register"])
    assert trained.exit_code == 0, trained.output
    assert "promoted" in trained.output and "split by time" in trained.output
    from ltr.training.contract import ModelContract
    from ltr.training.registry import ModelRegistry

    registry = ModelRegistry(settings.home)
    serving = registry.serving(INDEX)
    assert serving is not None
    contract = ModelContract.read(registry.model_dir(INDEX, serving))
    assert contract.feature_names == default_names() and contract.training["labels"] == "debiased"


def test_plain_messages_without_events(es: Any, fresh_index: str, tmp_path: Path, es_url: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_URL", es_url)
    missing = CliRunner().invoke(cli, ["--config", str(config_file(tmp_path, fresh_index)), "clicks", "aggregate",
                                       "--index", INDEX])
    assert missing.exit_code == 1 and "no events index" in missing.output
    es.indices.create(index=fresh_index, mappings=EVENTS_MAPPING)
    es.index(index=fresh_index, id="imp-1", refresh=True, document={
        "event_id": "imp-1", "type": "impression", "@timestamp": T0.isoformat(), "request_id": "r1",
        "index": INDEX, "query": "q", "hits": [{"doc_id": "a", "position": 1}]})
    quiet = CliRunner().invoke(cli, ["--config", str(config_file(tmp_path, fresh_index)), "clicks", "aggregate",
                                     "--index", INDEX, "--as-of", "2025-06-01"])
    assert quiet.exit_code == 1 and "no clicks" in quiet.output
    none = CliRunner().invoke(cli, ["--config", str(config_file(tmp_path, fresh_index)), "clicks", "aggregate",
                                    "--index", "nothing-here"])
    assert none.exit_code == 1 and "no impressions" in none.output
