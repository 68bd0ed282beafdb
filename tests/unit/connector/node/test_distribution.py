"""Fetching and unpacking the server with a scripted ``mvn`` and a tiny zip (``tests.support.fake_distribution``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connector.node.distribution import download, unpack
from hybridrank.errors import LauncherError
from tests.support.fake_distribution import fake_mvn, make_dist_zip


def test_download_without_mvn_names_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))
    with pytest.raises(LauncherError, match=r"Maven \(`mvn`\).*apt-get install maven"):
        download(tmp_path / "dist", "0.0.1-test")


def test_download_reports_a_failed_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mvn(tmp_path / "bin", "import sys\nprint('[ERROR] Could not find artifact 0.0.1-test')\nsys.exit(1)\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(LauncherError, match=r"(?s)mvn could not fetch .*0\.0\.1-test.*Could not find artifact"):
        download(tmp_path / "dist", "0.0.1-test")


def test_unpack_keeps_the_exec_bit_and_refuses_a_zip_of_another_version(tmp_path: Path) -> None:
    zip_path = tmp_path / "elasticsearch-0.0.1-test.zip"
    make_dist_zip(zip_path, "0.0.1-test")
    es_home = tmp_path / "elasticsearch-0.0.1-test"
    unpack(zip_path, es_home)
    assert os.access(es_home / "bin" / "elasticsearch", os.X_OK)
    assert (es_home / "config" / "jvm.options").is_file()
    with pytest.raises(LauncherError, match=r"does not hold elasticsearch-0\.0\.2/bin/elasticsearch"):
        unpack(zip_path, tmp_path / "elasticsearch-0.0.2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elasticsearch-0.0.1-test", "elasticsearch-0.0.1-test.zip"]
