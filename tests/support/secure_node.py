"""A managed node with security on and users of the file realm, shared by the security test modules.

Native users and roles cannot be created on this node (the ``.security`` index's mapping needs
``pattern_capture`` from analysis-common, which the integ-test-zip lacks), so the test users live in
the file realm: ``users`` (PBKDF2 hashes), ``users_roles`` and ``roles.yml`` in the node's config
directory, written before it starts. ``elastic`` (the bootstrap superuser) is the launcher's.

One node serves the whole test session (``shared_secure_node``); a test that stops it (the launcher's
own stop test) gets it started again by the next caller.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from connector.node.launcher import LocalElasticsearch
from hybridrank.config import load_settings

SECURE_PORT = int(os.environ.get("HYBRIDRANK_TEST_ES_SECURE_PORT", "9252"))
PASSWORD = "hybridrank-test-password"
EVENTS_INDEX = "sec-events"  # the events index of the endpoint the security tests run

# role -> Elasticsearch role descriptor (roles.yml is YAML; JSON is YAML)
ROLES: dict[str, dict[str, Any]] = {
    "sec_read": {"indices": [{"names": ["sec-*"], "privileges": ["read", "view_index_metadata"]}]},
    "sec_read_a": {"indices": [{"names": ["sec-a-*"], "privileges": ["read", "view_index_metadata"]}]},
    "sec_write": {"indices": [{"names": ["sec-*"], "privileges": ["read", "write", "create_index"]}]},
    "sec_clicks": {"indices": [{"names": [EVENTS_INDEX], "privileges": ["create_doc"]}]},
    "sec_monitor": {"cluster": ["monitor"]},
    "sec_run_as": {"run_as": ["only_a", "clicker"]},
}
# user -> roles
USERS: dict[str, tuple[str, ...]] = {
    "reader": ("sec_read",),
    "only_a": ("sec_read_a",),
    "writer": ("sec_write",),
    "clicker": ("sec_clicks",),
    "ops": ("sec_monitor",),
    "runner": ("sec_run_as",),  # acts as only_a or clicker with es-security-runas-user
}

_node: LocalElasticsearch | None = None


def pbkdf2_hash(password: str, *, salt: bytes | None = None, cost: int = 10_000) -> str:
    """A password hash the file realm reads: ``{PBKDF2}<cost>$<salt>$<key>`` (HMAC-SHA512, 256-bit key)."""
    salt = salt if salt is not None else os.urandom(32)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, cost, dklen=32)
    return f"{{PBKDF2}}{cost}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def write_file_realm(conf_dir: Path, users: Mapping[str, Sequence[str]], roles: Mapping[str, Any],
                     password: str) -> None:
    """``users``, ``users_roles`` and ``roles.yml`` in a node's config directory."""
    (conf_dir / "users").write_text("".join(f"{user}:{pbkdf2_hash(password)}\n" for user in users))
    by_role: dict[str, list[str]] = {}
    for user, user_roles in users.items():
        for role in user_roles:
            by_role.setdefault(role, []).append(user)
    (conf_dir / "users_roles").write_text("".join(f"{role}:{','.join(us)}\n" for role, us in by_role.items()))
    (conf_dir / "roles.yml").write_text("".join(f"{name}: {json.dumps(body)}\n" for name, body in roles.items()))


def shared_secure_node(config: pytest.Config) -> LocalElasticsearch:
    """The session's security-on node (a fresh cluster the first time), running."""
    global _node
    if _node is None:
        base = load_settings(None)
        settings = base.model_copy(update={"cluster": base.cluster.model_copy(update={"security": True, "url": ""})})
        node = LocalElasticsearch.from_settings(settings, port=SECURE_PORT, name="hybridrank-security", heap="512m")
        node.stop()
        shutil.rmtree(node.node_dir / "data", ignore_errors=True)  # a fresh cluster: the bootstrap password applies
        node.ensure_installed()
        write_file_realm(node.conf_dir, USERS, ROLES, PASSWORD)
        config.add_cleanup(node.stop)
        _node = node
    _node.start(wait_s=180)
    return _node
