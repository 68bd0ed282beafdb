"""What every subcommand shares: the settings from the group's ``--config``, and error mapping."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from hybridrank.config import Settings, load_settings
from hybridrank.errors import ConfigError, HybridRankError

P = ParamSpec("P")
R = TypeVar("R")


def settings_from(ctx: click.Context) -> Settings:
    """Load (once per invocation) the settings named by the root group's ``--config``."""
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    if "settings" not in obj:
        obj["settings"] = load_settings(obj.get("config_path"))
        root.obj = obj
    settings: Settings = obj["settings"]
    return settings


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors into click errors: bad config → exit 2, anything else of ours → exit 1, and
    a file the system will not read or write (missing folder, no permission, full disk) → exit 1 with
    the system's own words instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise click.UsageError(f"config: {exc}") from exc
        except HybridRankError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            raise click.ClickException(os_error_message(exc)) from exc

    return wrapper


def os_error_message(exc: OSError) -> str:
    """``No such file or directory: '/proc/nope'`` rather than ``[Errno 2] ...`` with a traceback."""
    if exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename!r}"
    return str(exc)
