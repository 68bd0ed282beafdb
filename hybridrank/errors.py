"""Typed errors for every hybridrank package.

The tree (catch the narrowest one you can handle)::

    HybridRankError
    ├── ConfigError              the config file or an override is invalid
    │   └── ExperimentRefused    an experiment cannot start as described (``hybridrank ab create``)
    ├── ClusterError             Elasticsearch is unreachable, or answered with an error
    │   ├── ClusterUnavailable   nothing answers at the configured URL
    │   └── IndexNotFound        the named index does not exist
    ├── LauncherError            the local Elasticsearch could not be fetched, started or stopped
    ├── DataError                an input file (documents, queries, qrels) is unreadable or malformed
    ├── EmbeddingError           the embedding model cannot be loaded or gives the wrong dimension
    └── ModelError               a ranking model is missing, corrupt, or its contract disagrees
        ├── ContractMismatch     the model was trained on other features than the live config
        └── PromotionRefused     the promotion gate refused the model (not better than the best fusion
                                 on held-out queries, or no held-out judgments to tell)

The CLI turns these into ``click.ClickException`` (exit 1); the HTTP endpoint turns them into
Elasticsearch-shaped error bodies.
"""

from __future__ import annotations


class HybridRankError(Exception):
    """Base of every error the library raises on purpose."""


class ConfigError(HybridRankError):
    """The configuration is invalid; the message names the key and the reason."""


class ExperimentRefused(ConfigError):
    """The experiment cannot start as described: a variant no model serves, an invalid experiment, or
    one already running on the index. Told apart from the config file's own ``ConfigError``."""


class ClusterError(HybridRankError):
    """Elasticsearch answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status: int = 500, error_type: str = "cluster_error") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class ClusterUnavailable(ClusterError):
    """Nothing answers at the configured Elasticsearch URL."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=503, error_type="cluster_unavailable")


class IndexNotFound(ClusterError):
    """The named index does not exist."""

    def __init__(self, index: str) -> None:
        super().__init__(f"no such index [{index}]", status=404, error_type="index_not_found_exception")
        self.index = index


class LauncherError(HybridRankError):
    """The managed local Elasticsearch could not be obtained, started or stopped."""


class DataError(HybridRankError):
    """An input file is unreadable or malformed; the message names the file and line."""


class EmbeddingError(HybridRankError):
    """The embedding model cannot be loaded, or produced vectors of the wrong dimension."""


class ModelError(HybridRankError):
    """A ranking model is missing, unreadable or unusable."""


class ContractMismatch(ModelError):
    """A model's feature contract disagrees with the live feature configuration."""


class PromotionRefused(ModelError):
    """The promotion gate refused the model; ``gate`` is the decision with its numbers
    (``ltr.training.gate.GateResult``), already stored with the model. ``--force`` overrides it."""

    def __init__(self, message: str, gate: object) -> None:
        super().__init__(message)
        self.gate = gate
