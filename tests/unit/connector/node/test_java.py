"""Java discovery without a real JDK: fake JDK directories with a ``release`` file or a ``bin/java`` script."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.node.java import find_java, java_major, parse_java_version
from hybridrank.errors import LauncherError


def fake_jdk(root: Path, name: str, version: str | None, *, release: bool = True) -> Path:
    """A directory shaped like a JDK: ``bin/java`` (a script printing ``version``) and maybe a ``release`` file."""
    home = root / name
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{version}" 2025-01-01\' >&2\n')
    java.chmod(0o755)
    if release and version is not None:
        (home / "release").write_text(f'IMPLEMENTOR="Test"\nJAVA_VERSION="{version}"\n')
    return home


@pytest.mark.parametrize(("text", "major"), [
    ('JAVA_VERSION="25.0.3"\n', 25),
    ('JAVA_VERSION="21"', 21),
    ('JAVA_VERSION="1.8.0_402"', 8),
    ('openjdk version "17.0.13" 2024-10-15\nOpenJDK Runtime Environment', 17),
    ("no version here", None),
])
def test_parse_java_version(text: str, major: int | None) -> None:
    assert parse_java_version(text) == major


def test_java_major_reads_release_or_runs_java(tmp_path: Path) -> None:
    assert java_major(fake_jdk(tmp_path, "with-release", "25.0.1")) == 25
    assert java_major(fake_jdk(tmp_path, "without-release", "21.0.4", release=False)) == 21
    assert java_major(tmp_path / "not-a-jdk") is None


def test_find_java_picks_the_newest_qualifying_jdk(tmp_path: Path) -> None:
    fake_jdk(tmp_path, "java-17", "17.0.13")
    fake_jdk(tmp_path, "java-21", "21.0.4")
    fake_jdk(tmp_path, "temurin-25", "25.0.3")
    found = find_java({"PATH": str(tmp_path / "nobin")}, [tmp_path])
    assert (found.path.name, found.major) == ("temurin-25", 25)


def test_find_java_honours_env_only_when_recent_enough(tmp_path: Path) -> None:
    old = fake_jdk(tmp_path / "a", "java-17", "17.0.13")
    ok = fake_jdk(tmp_path / "a", "java-21", "21.0.4")
    newest = fake_jdk(tmp_path / "b", "java-25", "25.0.3")
    roots = [tmp_path / "b"]
    env = {"PATH": str(tmp_path / "nobin")}
    assert find_java({**env, "ES_JAVA_HOME": str(ok)}, roots).path == ok  # honoured although 25 exists
    assert find_java({**env, "JAVA_HOME": str(ok)}, roots).path == ok
    assert find_java({**env, "ES_JAVA_HOME": str(old)}, roots).path == newest  # too old: skipped


def test_find_java_falls_back_to_java_on_path(tmp_path: Path) -> None:
    jdk = fake_jdk(tmp_path, "jdk", "22.0.1")
    found = find_java({"PATH": str(jdk / "bin")}, [tmp_path / "empty"])
    assert (found.path, found.major) == (jdk.resolve(), 22)


def test_find_java_without_a_recent_jdk_says_what_to_install(tmp_path: Path) -> None:
    fake_jdk(tmp_path, "java-17", "17.0.13")
    with pytest.raises(LauncherError, match=r"Java 21\+.*java-17 \(Java 17\).*ES_JAVA_HOME"):
        find_java({"PATH": str(tmp_path / "nobin")}, [tmp_path])
