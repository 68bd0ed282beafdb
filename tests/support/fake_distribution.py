"""A fake Elasticsearch distribution for the node's unit tests: a tiny integ-test-zip and a scripted ``mvn``.

``make_dist_zip`` writes a zip shaped like the real one (``bin/elasticsearch`` executable, a config
directory with a keystore that must not be copied); ``fake_mvn`` puts an ``mvn`` running the given
Python script in ``bin_dir``.
"""

from __future__ import annotations

import stat
import sys
import zipfile
from pathlib import Path


def make_dist_zip(path: Path, version: str) -> None:
    top = f"elasticsearch-{version}"
    with zipfile.ZipFile(path, "w") as archive:
        def add(name: str, text: str, mode: int) -> None:
            info = zipfile.ZipInfo(f"{top}/{name}")
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, text)
        add("bin/elasticsearch", "#!/bin/sh\nexit 0\n", 0o755)
        add("config/jvm.options", "-XX:+UseG1GC\n", 0o644)
        add("config/elasticsearch.yml", "# empty\n", 0o644)
        add("config/elasticsearch.keystore", "not copied\n", 0o600)


def fake_mvn(bin_dir: Path, script: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    mvn = bin_dir / "mvn"
    mvn.write_text(f"#!{sys.executable}\n{script}")
    mvn.chmod(0o755)
