"""Installing the project's plugin into a server: once per build, replaced when rebuilt, refused when foreign."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from connector.node.plugin import CHECKSUM_FILE, ZIP_ENV, descriptor, install_plugin, plugin_zip
from hybridrank.errors import LauncherError


def _zip(path: Path, *, version: str = "9.2.4", jar: bytes = b"jar", extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("plugin-descriptor.properties", f"# ours\nname=hybridrank\nelasticsearch.version={version}\n")
        archive.writestr("hybridrank-es-plugin-0.1.0.jar", jar)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def test_installed_once_per_build_and_replaced_when_rebuilt(tmp_path: Path) -> None:
    home = tmp_path / "elasticsearch-9.2.4"
    home.mkdir()
    first = _zip(tmp_path / "a.zip")
    assert install_plugin(home, first, "9.2.4") is True
    target = home / "plugins" / "hybridrank"
    assert sorted(p.name for p in target.iterdir()) == [CHECKSUM_FILE, "hybridrank-es-plugin-0.1.0.jar",
                                                         "plugin-descriptor.properties"]
    assert install_plugin(home, first, "9.2.4") is False  # the same zip: nothing to do
    assert install_plugin(home, _zip(tmp_path / "b.zip", jar=b"rebuilt"), "9.2.4") is True
    assert (target / "hybridrank-es-plugin-0.1.0.jar").read_bytes() == b"rebuilt"
    assert sorted(p.name for p in (home / "plugins").iterdir()) == ["hybridrank"]  # no staging left behind
    assert [p.name for p in home.iterdir() if p.name.startswith(".")] == []


def test_a_plugin_for_another_version_or_not_a_plugin_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "es"
    home.mkdir()
    with pytest.raises(LauncherError, match=r"built for Elasticsearch 9\.2\.0, the node is 9\.2\.4"):
        install_plugin(home, _zip(tmp_path / "old.zip", version="9.2.0"), "9.2.4")
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(bare, "w") as archive:
        archive.writestr("x.jar", b"")
    with pytest.raises(LauncherError, match="not an Elasticsearch plugin"):
        install_plugin(home, bare, "9.2.4")
    with pytest.raises(LauncherError, match="outside the plugin folder"):
        install_plugin(home, _zip(tmp_path / "evil.zip", extra={"../../etc/x": b""}), "9.2.4")
    torn = tmp_path / "torn.zip"
    torn.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(LauncherError, match="is not a zip"):
        install_plugin(home, torn, "9.2.4")
    assert not (home / "plugins" / "hybridrank").exists()


def test_the_zip_is_found_in_the_build_folder_or_named_by_the_environment(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ZIP_ENV, raising=False)
    assert plugin_zip("9.2.4", plugin_dir=tmp_path) is None
    built = tmp_path / "target" / "hybridrank-es-plugin-9.2.4.zip"
    built.parent.mkdir()
    _zip(built)
    assert plugin_zip("9.2.4", plugin_dir=tmp_path) == built
    assert plugin_zip("9.2.5", plugin_dir=tmp_path) is None
    monkeypatch.setenv(ZIP_ENV, str(tmp_path / "missing.zip"))
    with pytest.raises(LauncherError, match="no such file"):
        plugin_zip("9.2.4", plugin_dir=tmp_path)


def test_descriptor_lines() -> None:
    assert descriptor("# c\n\nname = hybridrank\n!x\nelasticsearch.version=9.2.4\n") == {
        "name": "hybridrank", "elasticsearch.version": "9.2.4"}
