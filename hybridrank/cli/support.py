"""What every subcommand shares: the settings from the group's ``--config``, error mapping, option parsing,
progress bars."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

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


def parse_request_time(_ctx: click.Context | None, _param: click.Parameter | None,
                       value: str | None) -> datetime | None:
    """ISO-8601 (naive = UTC); None when not given."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO-8601 date/time: {value!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Bar:
    """A started rich progress bar: ``advance(n)`` as work is done, ``set_total(n)`` once it is known."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)


@contextlib.contextmanager
def progress_bar(label: str, total: int | None = None, *, enabled: bool = True) -> Iterator[Bar]:
    """A transient bar on stderr while the block runs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=not enabled, transient=True) as progress:
        yield Bar(progress, progress.add_task(label, total=total))
