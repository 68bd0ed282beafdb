"""Dropping privileges when root: the ``setpriv`` prefix, and where the tree lives if the user cannot reach home."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.node import service_user
from connector.node.service_user import base_dir_for, others_can_reach, privilege_prefix


def test_privilege_prefix() -> None:
    assert privilege_prefix(None) == []
    assert privilege_prefix("hybridrank") == [
        "setpriv", "--reuid=hybridrank", "--regid=hybridrank", "--init-groups"]


@pytest.fixture()
def open_dir() -> Iterator[Path]:
    """A directory every user can traverse (pytest's tmp_path sits under a 0700 parent)."""
    path = Path(tempfile.mkdtemp(prefix="hybridrank-unit-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_private_home_moves_the_tree_when_root(open_dir: Path) -> None:
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    home = private / "cache" / "hybridrank"
    assert not others_can_reach(home)
    assert base_dir_for(home, as_root=True) == service_user.ROOT_FALLBACK_HOME
    assert base_dir_for(home, as_root=False) == home
    private.chmod(0o711)
    assert others_can_reach(home)
    assert base_dir_for(home, as_root=True) == home
