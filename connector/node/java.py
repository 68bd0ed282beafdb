"""Finding a JDK for Elasticsearch: ``ES_JAVA_HOME`` or ``JAVA_HOME`` if recent enough, else the newest installed.

Elasticsearch 9 needs Java 21+. A JDK's feature release is read from its ``release`` file (else from
``java -version``), so discovery starts no server and is testable with fake JDK directories; when
none qualifies the error names what to install.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hybridrank.errors import LauncherError

log = logging.getLogger(__name__)

MIN_JAVA = 21
JVM_SEARCH_ROOTS: tuple[Path, ...] = (
    Path("/usr/lib/jvm"),
    Path("/usr/java"),
    Path("/opt/java"),
    Path("/opt"),
    Path("/Library/Java/JavaVirtualMachines"),
)


@dataclass(frozen=True, slots=True)
class JavaHome:
    """A JDK usable by Elasticsearch: its home directory and feature release (21, 25, ...)."""

    path: Path
    major: int


def parse_java_version(text: str) -> int | None:
    """The feature release from a ``release`` file or ``java -version`` output: ``"25.0.3"`` → 25, ``"1.8.0"`` → 8."""
    match = re.search(r'(?:JAVA_VERSION=|version\s+)"(\d+)(?:\.(\d+))?', text)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # the pre-9 scheme, 1.8 = Java 8
        return int(match.group(2))
    return major


def java_major(java_home: Path) -> int | None:
    """The release of the JDK at ``java_home`` (its ``release`` file, else ``bin/java -version``); None if not a JDK."""
    java = java_home / "bin" / "java"
    if not java.is_file():
        return None
    release = java_home / "release"
    if release.is_file():
        found = parse_java_version(release.read_text(encoding="utf-8", errors="replace"))
        if found is not None:
            return found
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_java_version(out.stderr + out.stdout)


def _candidate_homes(search_roots: Sequence[Path]) -> Iterator[Path]:
    for root in search_roots:
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            yield child
            yield child / "Contents" / "Home"  # macOS bundles


def find_java(
    env: Mapping[str, str] | None = None,
    search_roots: Sequence[Path] = JVM_SEARCH_ROOTS,
    *,
    minimum: int = MIN_JAVA,
) -> JavaHome:
    """A JDK ≥ ``minimum``: ``ES_JAVA_HOME`` or ``JAVA_HOME`` if recent enough, else the newest one installed.

    Raises ``LauncherError`` naming what to install when none qualifies.
    """
    env = os.environ if env is None else env
    seen: dict[Path, int | None] = {}

    def probe(path: Path) -> int | None:
        key = path.resolve() if path.exists() else path
        if key not in seen:
            seen[key] = java_major(path)
        return seen[key]

    for var in ("ES_JAVA_HOME", "JAVA_HOME"):
        if value := env.get(var):
            major = probe(Path(value))
            if major is not None and major >= minimum:
                return JavaHome(Path(value), major)
            log.warning("%s=%s is Java %s; Elasticsearch needs %d+, looking elsewhere", var, value, major, minimum)
    best: JavaHome | None = None
    for home in _candidate_homes(search_roots):
        major = probe(home)
        if major is not None and major >= minimum and (best is None or major > best.major):
            best = JavaHome(home, major)
    if best is None and (on_path := shutil.which("java", path=env.get("PATH"))):
        home = Path(on_path).resolve().parent.parent
        major = probe(home)
        if major is not None and major >= minimum:
            best = JavaHome(home, major)
    if best is None:
        found = ", ".join(f"{p} (Java {m})" for p, m in seen.items() if m is not None) or "none"
        raise LauncherError(
            f"Elasticsearch 9 needs Java {minimum}+, and none was found (JDKs seen: {found}). "
            f"Install one (e.g. `apt-get install temurin-25-jdk` or `openjdk-21-jdk-headless`) "
            f"or set ES_JAVA_HOME to it."
        )
    return best
