"""Running the node when we are root: Elasticsearch refuses to, so it runs as a system user.

When we are root the node runs as ``hybridrank`` (``HYBRIDRANK_ES_USER``; created once with
``useradd``) via ``setpriv``, and its tree is chowned to that user. If the user cannot reach
``settings.home`` (e.g. it sits under a ``0700`` ``/root``), the tree lives under
``/var/lib/hybridrank`` instead.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

from hybridrank.errors import LauncherError

log = logging.getLogger(__name__)

SERVICE_USER = os.environ.get("HYBRIDRANK_ES_USER", "hybridrank")
ROOT_FALLBACK_HOME = Path("/var/lib/hybridrank")


def privilege_prefix(user: str | None) -> list[str]:
    """``setpriv`` arguments that run the rest of a command as ``user`` (empty when not dropping privileges)."""
    if user is None:
        return []
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]


def others_can_reach(path: Path) -> bool:
    """True when every existing ancestor of ``path`` is traversable by an unrelated user (o+x)."""
    existing = [part for part in (path, *path.parents) if part.exists()]
    return all(os.stat(part).st_mode & stat.S_IXOTH for part in existing)


def base_dir_for(home: Path, *, as_root: bool) -> Path:
    """Where the server and nodes live: ``home``, unless a dropped-privilege node could not reach it."""
    if as_root and not others_can_reach(home):
        return ROOT_FALLBACK_HOME
    return home


def ensure_service_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise LauncherError(f"Elasticsearch cannot run as root and `useradd` is missing to create user {user!r}")
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 and result.returncode != 9:  # 9 = already exists (a concurrent creator)
        raise LauncherError(f"could not create the system user {user!r}: {result.stderr.strip()}")
    log.info("created system user %r to run Elasticsearch (it refuses to run as root)", user)


def chown_tree(root: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, entry.pw_uid, entry.pw_gid)
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
