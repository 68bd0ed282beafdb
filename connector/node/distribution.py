"""The Elasticsearch server itself: its integ-test-zip fetched from Maven Central with ``mvn``, then unpacked.

The zip is fetched once into ``dist/`` and unpacked once into ``elasticsearch-<version>/``, which
every node shares. Unpacking goes through a staging directory renamed into place, so a crash never
leaves half a server, and keeps the Unix permission bits that ``bin/`` needs.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from connector.node.process import LOG_TAIL_LINES
from hybridrank.errors import LauncherError

log = logging.getLogger(__name__)

MAVEN_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
MAVEN_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy"


def download(dist: Path, version: str) -> Path:
    """``dist/elasticsearch-<version>.zip``, fetched with ``mvn`` unless a valid one is already there."""
    zip_path = dist / f"elasticsearch-{version}.zip"
    if zip_path.is_file() and zipfile.is_zipfile(zip_path):
        return zip_path
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LauncherError(
            "Maven (`mvn`) is needed to fetch Elasticsearch from Maven Central; install it "
            "(`apt-get install maven`) or point HYBRIDRANK_ES_URL at a running cluster"
        )
    dist.mkdir(parents=True, exist_ok=True)
    artifact = MAVEN_ARTIFACT.format(version=version)
    log.info("downloading Elasticsearch %s from Maven Central (%s)", version, artifact)
    command = [mvn, "-B", "-q", MAVEN_PLUGIN, f"-Dartifact={artifact}", f"-DoutputDirectory={dist}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as exc:
        raise LauncherError(f"mvn did not finish fetching {artifact} within 900 s") from exc
    if result.returncode != 0 or not zip_path.is_file():
        output = "\n".join((result.stdout + result.stderr).splitlines()[-LOG_TAIL_LINES:])
        raise LauncherError(
            f"mvn could not fetch {artifact} (is version {version} published as an integ-test-zip? "
            f"9.2.0 and 9.2.4 are):\n{output}"
        )
    return zip_path


def unpack(zip_path: Path, es_home: Path) -> None:
    """Unpack the zip's ``elasticsearch-<version>/`` into ``es_home`` (staged beside it, then renamed)."""
    base = es_home.parent
    log.info("unpacking %s into %s", zip_path.name, base)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=base))
    try:
        _extract(zip_path, staging)
        unpacked = staging / es_home.name
        if not (unpacked / "bin" / "elasticsearch").is_file():
            raise LauncherError(f"{zip_path} does not hold {es_home.name}/bin/elasticsearch")
        os.chmod(unpacked, 0o755)
        unpacked.rename(es_home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract(zip_path: Path, into: Path) -> None:
    """Unzip keeping Unix permission bits (``zipfile`` alone drops them, and ``bin/`` must stay executable)."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = into / info.filename
            if not target.resolve().is_relative_to(into.resolve()):
                raise LauncherError(f"{zip_path}: refusing entry outside the target: {info.filename}")
            archive.extract(info, into)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)
            elif target.is_dir():
                os.chmod(target, 0o755)
