"""Starting an experiment: the variant syntax, the share split, and which refusals the CLI shows as usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridrank.config import load_settings
from hybridrank.errors import ConfigError, ExperimentRefused
from ltr.experiments.launch import build_variants, parse_variant, start_experiment
from ltr.training.registry import ModelRegistry


def test_parse_variant() -> None:
    assert parse_variant("A=hybrid") == ("A", "hybrid", None)
    assert parse_variant("B=model:m1:0.3") == ("B", "model:m1", 0.3)
    assert parse_variant("B=model:m1") == ("B", "model:m1", None)
    assert parse_variant("C=es:0.25") == ("C", "es", 0.25)
    assert parse_variant("D=variant:canary") == ("D", "variant:canary", None)
    for bad in ("A", "=hybrid", "A=", "A=bm25", "A=hybrid:1.5", "A=model:"):
        with pytest.raises(ConfigError):
            parse_variant(bad)


def test_build_variants_splits_the_remaining_share() -> None:
    v = build_variants(("A=hybrid:0.5", "B=rrf", "C=es"))
    assert [(x.name, x.share) for x in v] == [("A", 0.5), ("B", 0.25), ("C", 0.25)]
    with pytest.raises(ConfigError, match="nothing is left"):
        build_variants(("A=hybrid:1", "B=rrf"))


def test_refusals_are_told_apart_from_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYBRIDRANK_HOME", raising=False)  # the config's own home, whatever the shell exports
    path = tmp_path / "hybridrank.toml"
    path.write_text(f'home = "{tmp_path / "home"}"\n[indices.bad]\nfeatures = ["bogus"]\n', encoding="utf-8")
    settings = load_settings(path)
    variants = build_variants(("A=hybrid", "B=model:m1"))
    with pytest.raises(ExperimentRefused, match="index 'docs' has no model 'm1'"):
        start_experiment(settings, "x", index="docs", mode="ab", variants=variants)
    ModelRegistry(settings.home).model_dir("bad", "m1").mkdir(parents=True)
    with pytest.raises(ConfigError, match="unknown feature 'bogus'") as raised:  # the config's, not a refusal
        start_experiment(settings, "x", index="bad", mode="ab", variants=variants)
    assert not isinstance(raised.value, ExperimentRefused)
    plain = build_variants(("A=hybrid", "B=rrf"))
    experiment, compiled = start_experiment(settings, "x", index="docs", mode="ab", variants=plain)
    assert compiled == [] and len(experiment.salt) == 16  # nothing to compile; a random salt
    with pytest.raises(ExperimentRefused, match="already running on index 'docs'"):
        start_experiment(settings, "y", index="docs", mode="ab", variants=plain)
