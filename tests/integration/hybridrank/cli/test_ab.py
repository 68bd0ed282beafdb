"""``hybridrank ab status|report`` against the real node: traffic and statistics from the events index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from elasticsearch import helpers

from connector.events.schema import EVENTS_MAPPING, click_event_id
from hybridrank.cli.main import cli
from hybridrank.config import Settings
from ltr.clicks.impressions import Impression
from ltr.experiments.stats import compute_stats
from ltr.experiments.store import Experiment, ExperimentStore, Variant
from tests.support.ab_synthetic import synthetic_impressions

ENV = {"ES_URL": None, "HYBRIDRANK_ES_URL": None, "HYBRIDRANK_HOME": None, "HYBRIDRANK_CONFIG": None}


def _events(imps: list[Impression]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i in imps:
        docs.append({"event_id": f"imp-{i.request_id}", "type": "impression", "@timestamp": i.timestamp.isoformat(),
                     "request_id": i.request_id, "user_id": i.user_id, "index": i.index, "query": i.query,
                     "experiment": i.experiment, "variant": i.variant,
                     "hits": [{"doc_id": h.doc_id, "position": h.position, "team": h.team} for h in i.hits]})
        for doc, ts in i.clicks.items():
            docs.append({"event_id": click_event_id(i.request_id, doc), "type": "click", "@timestamp": ts.isoformat(),
                         "request_id": i.request_id, "doc_id": doc, "user_id": i.user_id})
    return docs


@pytest.fixture()
def config(tmp_path: Path, settings: Settings, fresh_index: str) -> Path:
    path = tmp_path / "hybridrank.toml"
    path.write_text(f'home = "{tmp_path / "home"}"\n[cluster]\nurl = "{settings.cluster.url}"\n'
                    f'[feedback]\nevents_index = "{fresh_index}"\n', encoding="utf-8")
    return path


def _run(config: Path, *args: str) -> Result:
    return CliRunner(env=ENV).invoke(cli, ["--config", str(config), "ab", *args])


def test_status_and_report_read_the_events_index(es, config: Path, fresh_index: str,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    r = _run(config, "report", "none-yet")
    assert r.exit_code == 1 and "no experiment 'none-yet'" in r.output
    # the report reads logged traffic only: which rankers the arms name does not matter here
    assert _run(config, "create", "exp-a", "--index", "docs", "--variant", "A=hybrid", "--variant",
                "B=rrf", "--salt", "s1").exit_code == 0
    r = _run(config, "report", "exp-a")
    assert r.exit_code == 1 and "has no traffic yet" in r.output and fresh_index in r.output

    exp = ExperimentStore(tmp_path / "home" / "experiments.json").get("exp-a")
    imps = synthetic_impressions(exp, seed=3, users=120, lift=0.5)
    others = synthetic_impressions(Experiment("other", "docs2", "ab", (Variant("A", "es"), Variant("B", "rrf")),
                                              salt="x"), seed=4, users=20)
    es.indices.create(index=fresh_index, mappings=EVENTS_MAPPING)
    helpers.bulk(es, ({"_index": fresh_index, "_id": d["event_id"], "_source": d} for d in _events(imps + others)))

    assert _run(config, "create", "exp-b", "--index", "docs-b", "--mode", "interleave", "--variant", "A=hybrid",
                "--variant", "B=rrf").exit_code == 0
    r = _run(config, "report", "exp-b")
    assert r.exit_code == 1 and "experiment 'exp-b' has no traffic yet" in r.output

    status = _run(config, "status", "--json")
    assert status.exit_code == 0, status.output
    rows = {e["id"]: e["traffic"] for e in json.loads(status.output)["experiments"]}
    assert rows["exp-a"]["impressions"] == len(imps) and rows["exp-a"]["users"] == 120
    assert rows["exp-a"]["variants"] == {v: sum(i.variant == v for i in imps) for v in ("A", "B")}
    assert rows["exp-b"]["impressions"] == 0

    html = tmp_path / "out" / "exp-a.html"
    r = _run(config, "report", "exp-a", "--json", "--html", str(html))
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    expected = compute_stats(imps, exp)
    assert data["impressions"] == len(imps) and data["verdict"] == expected.verdict
    assert data["variants"][1]["metrics"]["ctr"]["value"] == pytest.approx(expected.variants[1].metrics["ctr"].value)
    assert html.is_file() and 'id="ctr-over-time"' in html.read_text(encoding="utf-8")

    r = _run(config, "report", "exp-a")
    assert r.exit_code == 0, r.output
    assert "B beats A on CTR" in r.output.replace("\n", " ")
    assert (tmp_path / "home" / "reports" / "exp-a.html").is_file()
