"""Config: typed, validated at load, environment overrides, errors that name the key."""

from pathlib import Path

import pytest

from hybridrank.config import load_settings
from hybridrank.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_defaults_without_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("HYBRIDRANK_CONFIG", "ES_URL", "HYBRIDRANK_ES_URL", "HYBRIDRANK_HOME", "HYBRIDRANK_ES_PORT"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings()
    assert settings.source == "<defaults>"
    assert settings.cluster.url == "" and settings.cluster.port == 9250
    assert settings.index("anything").candidate_window == 100


def test_the_repository_config_loads() -> None:
    settings = load_settings(REPO / "hybridrank.toml")
    assert {"scifact", "arguana", "cranfield"} <= set(settings.indices)


def test_env_overrides_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[cluster]\nurl = "http://file:9200"\n')
    monkeypatch.setenv("ES_URL", "http://env:9200")
    monkeypatch.setenv("HYBRIDRANK_HOME", str(tmp_path / "home"))
    settings = load_settings(cfg)
    assert settings.cluster.url == "http://env:9200"
    assert settings.home == tmp_path / "home"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[cluster]\nport = 0\n", "cluster.port"),
        ("[indices.x]\ntext_fields = {}\n", "indices.x.text_fields"),
        ("[indices.x]\ntext_fields = { title = -1 }\n", "boost of text field 'title'"),
        ("[indices.x]\ncandidate_window = 500\nknn_num_candidates = 100\n", "knn_num_candidates"),
        ("[cluster]\nurll = 'typo'\n", "cluster.urll"),
        ("not toml = = =", "not valid TOML"),
    ],
)
def test_invalid_config_names_the_culprit(tmp_path: Path, text: str, fragment: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ES_URL", raising=False)
    monkeypatch.delenv("HYBRIDRANK_ES_PORT", raising=False)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")) as info:
        load_settings(cfg)
    assert str(cfg) in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")
