"""One configuration file (TOML), parsed into typed objects and checked at load.

Precedence, lowest first: the defaults written below, the file, environment variables:

- ``HYBRIDRANK_CONFIG``  path of the config file (default ``./hybridrank.toml`` if present)
- ``ES_URL`` / ``HYBRIDRANK_ES_URL``  an Elasticsearch cluster to use instead of the managed local node
- ``HYBRIDRANK_HOME``  where caches live (Elasticsearch download, embeddings); default ``~/.cache/hybridrank``
- ``HYBRIDRANK_ES_PORT``  HTTP port of the managed local node
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hybridrank.errors import ConfigError

DEFAULT_CONFIG_NAME = "hybridrank.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterConfig(_Strict):
    """Which Elasticsearch to talk to, and how to run the managed local node."""

    url: str = Field("", description="A running cluster; empty means the managed local node.")
    api_key: str = ""
    username: str = ""
    password: str = ""
    request_timeout_s: float = Field(30.0, gt=0)
    es_version: str = Field("9.2.4", description="Version of the managed local node.")
    port: int = Field(9250, ge=1, le=65535, description="HTTP port of the managed local node.")
    heap: str = Field("1g", pattern=r"^\d+[mg]$")
    security: bool = Field(False, description="Run the managed local node with security on.")


class EmbeddingConfig(_Strict):
    """The bi-encoder. ``model`` is a packaged alias, a local path, or a name already in the HF cache."""

    model: str = "minilm"
    batch_size: int = Field(32, ge=1, le=4096)
    normalize: bool = True
    query_cache_size: int = Field(4096, ge=0)
    query_runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="What embeds queries: 'onnx' (the model's weights exported once to ONNX Runtime; "
        "~3x faster per query, vectors within 2e-7) or 'torch'. Documents always embed with torch.",
    )
    query_threads: int = Field(1, ge=1, le=64, description="Intra-op threads per query (ONNX runtime).")


class IndexConfig(_Strict):
    """One searchable index: its fields, its vector, its candidate window."""

    text_fields: dict[str, float] = Field(
        default_factory=lambda: {"title": 1.0, "text": 1.0},
        description="BM25 text fields and their boosts.",
    )
    embed_fields: list[str] = Field(
        default_factory=lambda: ["title", "text"],
        description="Fields joined (in order) into the text that is embedded.",
    )
    id_field: str = Field(
        "",
        description="Field holding each document's id; empty = the first of '_id', 'id', 'doc_id' present. "
        "In a BEIR folder the id is always '_id'.",
    )
    vector_field: str = "embedding"
    hnsw_m: int = Field(16, ge=2, le=512, description="HNSW graph degree of the dense_vector field.")
    hnsw_ef_construction: int = Field(100, ge=10, le=3200, description="HNSW build-time candidate list.")
    vector_index_type: Literal["hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw"] = Field(
        "hnsw", description="HNSW over float vectors (exact scores), or over scalar-quantised (int8/int4) or "
        "binary-quantised (bbq) copies of them: smaller and faster to build and search, scores approximate.")
    replicas: int = Field(0, ge=0, description="Replicas of a newly created index.")
    timestamp_field: str = ""
    numeric_fields: list[str] = Field(default_factory=list)
    keyword_fields: list[str] = Field(default_factory=list, description="Exact-match fields for filters.")
    analyzer: Literal["auto", "standard", "english", "hybridrank_english", "english_hunspell"] = Field(
        "auto",
        description="english = the analysis-common English analyzer (if the cluster has it); "
        "english_hunspell = stop words + hunspell en_US stemming (needs the en_US dictionary in the node's "
        "config); hybridrank_english = the project's plugin's copy of the english analyzer (Porter stemming); "
        "auto = the best of english > english_hunspell > hybridrank_english > standard the cluster supports.",
    )
    bm25_k1: float = Field(1.2, ge=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    candidate_window: int = Field(100, ge=1, le=10_000)
    knn_num_candidates: int = Field(200, ge=1, le=10_000)
    rrf_k: int = Field(60, ge=1)
    linear_weight: float = Field(0.5, ge=0, le=1, description="Weight of the dense leg in linear fusion.")
    shards: int = Field(1, ge=1)
    features: list[str] = Field(
        default_factory=list,
        description="Ordered ranking features (see features.registry); empty = the default set for "
        "this index's fields.",
    )
    freshness_half_life_days: float = Field(30.0, gt=0, description="Half-life of the freshness feature.")
    cross_encoder_model: str = Field(
        "", description="Cross-encoder (a directory or a cached name) of the optional 'cross_encoder' feature; "
        "empty = the feature is NaN.")
    cross_encoder_top_n: int = Field(
        20, ge=1, le=10_000, description="The 'cross_encoder' feature scores this many top candidates; the rest NaN.")

    @field_validator("text_fields")
    @classmethod
    def _some_text_field(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one text field is required")
        for name, boost in value.items():
            if boost <= 0:
                raise ValueError(f"boost of text field {name!r} must be > 0, got {boost}")
        return value

    @model_validator(mode="after")
    def _window_fits_candidates(self) -> IndexConfig:
        if self.knn_num_candidates < self.candidate_window:
            raise ValueError(
                f"knn_num_candidates ({self.knn_num_candidates}) must be >= candidate_window "
                f"({self.candidate_window})"
            )
        return self


# the simulated users (ltr.clicks.user_models); here so the config can check a name without importing them
ClickModelName = Literal["position-based", "perfect", "navigational", "informational", "cascade"]


class FeedbackConfig(_Strict):
    """The feedback loop: where events go, where they wait when Elasticsearch is down, click stats."""

    events_index: str = Field("hybridrank-events", description="Elasticsearch index of impressions and clicks.")
    spool_dir: Path | None = Field(None, description="Durable local spool; empty = <home>/spool.")
    flush_interval_s: float = Field(1.0, gt=0, description="How often the spool is sent to Elasticsearch.")
    batch_size: int = Field(500, ge=1, le=10_000, description="Events per bulk request.")
    max_post_bytes: int = Field(1 << 20, ge=1024, le=1 << 30, description="Largest POST /_hybridrank/events "
                                "body accepted (bytes); a larger one is refused whole with a 413.")
    max_post_events: int = Field(10_000, ge=1, description="Most events in one POST /_hybridrank/events.")
    log_impressions: bool = Field(True, description="Log an impression for every reranked search.")
    log_features: bool = Field(True, description="Impressions of rankers without features (es, hybrid, rrf) "
                               "still carry the index's feature snapshot, computed after the response.")
    ctr_prior_weight: float = Field(10.0, ge=0, description="Pseudo-impressions of the CTR smoothing prior.")
    ctr_window_days: float = Field(0.0, ge=0, description="Only events this recent count; 0 = all.")
    click_model: ClickModelName = Field(
        "navigational", description="The simulated users of `hybridrank demo` and the feedback loop "
        "(`hybridrank simulate --click-model` overrides it): position-based (DESIGN.md), perfect, navigational, "
        "informational or cascade (ltr.clicks.user_models).")
    user_propensity_sd: float = Field(0.0, ge=0, description="Simulated users differ in how much they click "
                                      "(a gamma propensity per user, mean 1, this spread); 0 = identical users.")
    max_queued_impressions: int = Field(
        10_000, ge=1, description="Impressions waiting in memory for the spool (its disk full or unwritable); "
        "beyond this they are dropped and counted (hybridrank_events_dropped), so memory stays bounded.")


class AdmissionConfig(_Strict):
    """Bounded admission to the endpoint (``connector.endpoint.admission``): beyond ``max_in_flight``
    requests at work and ``max_queued`` waiting, a request is shed at once with Elasticsearch's own
    overload answer (429 ``es_rejected_execution_exception`` + ``Retry-After``); health and metrics are exempt.

    The defaults bound what one endpoint holds (32 at work, the upstream pool has 64 connections; 64
    waiting at most 2 s each), not its latency on a given machine: docs/reliability.md has what 200
    clients measured on 2 shared cores (bench/bench_reliability.py --admission tries other limits)."""

    enabled: bool = Field(True, description="false = admit everything (no queue bound).")
    max_in_flight: int = Field(32, ge=1, le=10_000, description="Requests the endpoint works on at once.")
    max_queued: int = Field(64, ge=0, le=100_000, description="Requests waiting for a slot; beyond: 429 at once.")
    queue_timeout_s: float = Field(2.0, gt=0, description="A request that waited this long for a slot gets 429.")
    retry_after_s: int = Field(1, ge=0, le=3600, description="The Retry-After (seconds) of a shed request.")


class AuthConfig(_Strict):
    """Who may call the endpoint's own routes, POST /_hybridrank/events and GET /_hybridrank/metrics
    (``connector.endpoint.auth``; /_hybridrank/health is open). Apps' own requests are not judged by
    the endpoint: they reach Elasticsearch with the app's credentials or none, never the configured ones."""

    own_routes: Literal["auto", "on", "off"] = Field(
        "auto", description="auto = authenticate callers when the cluster has security on (an anonymous "
        "GET /_security/_authenticate answers 401, or 200 from its anonymous realm); on = always (a cluster "
        "without security then gives 503); off = never (only behind a network that already authenticates).")
    events_privilege: str = Field(
        "create_doc", description="Index privilege on feedback.events_index that posting events needs (the "
        "right to add documents to the index the events are stored in); '' = any authenticated caller.")
    metrics_privilege: str = Field(
        "monitor", description="Cluster privilege that reading the metrics needs; '' = any authenticated caller.")
    cache_ttl_s: float = Field(30.0, ge=0, description="How long a caller's authentication and privilege "
                               "answer is reused (per hash of its credentials); 0 = ask every time.")
    cache_size: int = Field(1024, ge=1, description="Most callers whose answers are kept at once.")
    outage_grace_s: float = Field(300.0, ge=0, description="While Elasticsearch cannot be asked, an answer that "
                                  "expired less than this long ago still holds (events keep being accepted).")


BaselineOrder = Literal["bm25", "knn", "es", "rrf", "linear"]  # connector.retrieval.retriever.MODES
DEFAULT_GATE_BASELINES: tuple[BaselineOrder, ...] = ("bm25", "es", "rrf", "linear")


class GateConfig(_Strict):
    """The promotion gate (``ltr.training.gate``): a model serves an index only if it beats the best
    baseline order on held-out judged queries of that index. The rule: promote iff
    ``mean(model) - mean(best baseline) > 0`` on ``metric`` and the paired test's one-sided p < ``alpha``."""

    metric: Literal["ndcg@10", "mrr@10", "recall@100"] = Field(
        "ndcg@10", description="The metric the model and the baselines are compared on (per query, ranx).")
    alpha: float = Field(
        0.05, gt=0, le=1, description="The model must be better with a one-sided paired p below this; "
        "1.0 = ahead on the mean is enough.")
    stat_test: Literal["student", "fisher"] = Field(
        "student", description="The paired test, as `hybridrank evaluate --stat-test`: Student's t or "
        "Fisher's randomization test.")
    baselines: list[BaselineOrder] = Field(
        default_factory=lambda: list(DEFAULT_GATE_BASELINES),
        description="Orders the model must beat the best of: RRF and linear fusion (the endpoint's hybrid "
        "order), BM25 and Elasticsearch's own query+knn sum; all from the same legs (es: one more search).")
    min_queries: int = Field(
        20, ge=2, description="Fewer held-out judged queries than this is no evidence: the gate refuses.")

    @field_validator("baselines")
    @classmethod
    def _some_baseline(cls, value: list[BaselineOrder]) -> list[BaselineOrder]:
        if not value:
            raise ValueError("at least one baseline is required")
        return list(dict.fromkeys(value))


class StateConfig(_Strict):
    """Where the state endpoint replicas must agree on lives (``connector.state``): experiments, the model
    registry's serving assignments and model artefacts, click statistics."""

    store: Literal["file", "elasticsearch"] = Field(
        "file", description="file = JSON files under home (one machine: the CLI and one endpoint); "
        "elasticsearch = documents in the cluster, shared by any number of endpoint replicas.")
    index: str = Field("hybridrank-state", description="Index of the shared state documents (store = elasticsearch).")
    models_index: str = Field("hybridrank-models", description="Index of the model artefacts (store = elasticsearch).")
    refresh_s: float = Field(1.0, gt=0, le=300, description="How often an endpoint checks the shared state: "
                             "a promote, rollback or `ab create/stop` reaches every replica within this.")


class TrainingConfig(_Strict):
    """Where training runs when it does not fit one process."""

    dask_scheduler: str = Field("", description="Address of a Dask scheduler (tcp://host:8786) for "
                                "`train --dask`; empty = a LocalCluster of `dask_workers` processes.")
    dask_workers: int = Field(2, ge=1, le=256, description="Workers of the LocalCluster `train --dask` starts.")
    log_workers: int = Field(1, ge=1, le=256, description="Processes that compute a feature log's rows.")


class Settings(_Strict):
    """The whole configuration."""

    home: Path = Field(default_factory=lambda: Path("~/.cache/hybridrank").expanduser())
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    indices: dict[str, IndexConfig] = Field(default_factory=dict)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    admission: AdmissionConfig = Field(default_factory=AdmissionConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    compile_models: bool = Field(True, description="The endpoint scores LightGBM models as native code "
                                 "(lleaves; built in the background, cached in <home>/compiled, checked "
                                 "against LightGBM); false = LightGBM's own predict.")
    source: str = Field("<defaults>", description="Where this configuration was read from.")

    def index(self, name: str) -> IndexConfig:
        """The config of ``name``; an index not named in the file gets the defaults."""
        return self.indices.get(name) or IndexConfig()

    @property
    def spool_dir(self) -> Path:
        return Path(self.feedback.spool_dir or Path(self.home) / "spool").expanduser()

    @property
    def compiled_dir(self) -> Path | None:
        """Where compiled models are cached; None when ``compile_models`` is off."""
        return Path(self.home).expanduser() / "compiled" if self.compile_models else None

    @property
    def clicks_dir(self) -> Path:
        """Where ``hybridrank clicks aggregate`` writes the statistics the CTR feature reads."""
        return Path(self.home).expanduser() / "clicks"

    @property
    def experiments_file(self) -> Path:
        return Path(self.home).expanduser() / "experiments.json"


def _env_overrides(raw: dict) -> dict:
    merged = dict(raw)
    cluster = dict(merged.get("cluster", {}))
    url = os.environ.get("HYBRIDRANK_ES_URL") or os.environ.get("ES_URL")
    if url:
        cluster["url"] = url
    if port := os.environ.get("HYBRIDRANK_ES_PORT"):
        cluster["port"] = port
    merged["cluster"] = cluster
    if home := os.environ.get("HYBRIDRANK_HOME"):
        merged["home"] = home
    return merged


def load_settings(path: str | Path | None = None) -> Settings:
    """Read, override and validate the configuration; raise ``ConfigError`` naming the bad key."""
    if path is None:
        env_path = os.environ.get("HYBRIDRANK_CONFIG")
        if env_path:
            path = Path(env_path)
        elif Path(DEFAULT_CONFIG_NAME).exists():
            path = Path(DEFAULT_CONFIG_NAME)
    raw: dict = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        source = str(path)
    raw = _env_overrides(raw)
    raw["source"] = source
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from exc
    return settings.model_copy(update={"home": Path(settings.home).expanduser()})
