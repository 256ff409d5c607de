"""Option types and checks of ``evpm``: what can be judged from the command line alone is
judged while click parses it, so a bad value stops the command before it asks the system
anything, with a message that names the option (exit 2).

Input files are read here too, before anything runs, but a file that cannot be read or is
not JSON is a failed operation (exit 1, ``Error: --file PATH: why``), not a usage error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from evpm.pins import MODEL_NAMES, TASK_OF
from evpm.telemetry import _EARLIEST, _LATEST
from evpm_cli.lifecycle import canonical_model
from evpm_cli.loadgen import read_file

__all__ = [
    "ModelName",
    "UtcTime",
    "execution_name_part",
    "json_lines_file",
    "json_object_file",
    "key_name",
]

# An execution's name: 1-80 of these; `lifecycle run` adds 23 characters to the trigger.
_NAME_PART = re.compile(r"[A-Za-z0-9_-]{1,57}")


class ModelName(click.ParamType):
    """A model by its registered name (``ev-rul``) or its short one (``rul``); the command
    gets the registered name, the one the registry, the pins and the API print."""

    name = "model"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "[" + "|".join(MODEL_NAMES) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        name = canonical_model(str(value))
        if name is None:
            self.fail(
                f"unknown model {value!r}: use one of {', '.join(MODEL_NAMES)} "
                f"(or {', '.join(TASK_OF.values())})",
                param,
                ctx,
            )
        return name


class UtcTime(click.ParamType):
    """An ISO 8601 time (``2026-01-01T00:00:00Z``; one without an offset is UTC), within the
    years a reading may carry, as an aware UTC datetime."""

    name = "time"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)", param, ctx)
        utc = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        if not _EARLIEST <= utc < _LATEST:
            self.fail(f"{value!r} is outside 1970-01-01 to 2100-01-01 UTC", param, ctx)
        return utc


def execution_name_part(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A value that goes into a Step Functions execution name (letters, digits, - and _)."""
    if not _NAME_PART.fullmatch(value):
        raise click.BadParameter(
            f"{value!r}: use 1 to 57 letters, digits, '-' or '_' (it starts the execution's name)"
        )
    return value


def key_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A key's name: what a user types to revoke it, so neither empty nor padded."""
    if not value.strip() or value != value.strip():
        raise click.BadParameter(f"{value!r}: a key's name is not empty and has no edge spaces")
    return value


@contextmanager
def _reading(param: click.Parameter, path: str) -> Iterator[None]:
    """A file that cannot be read fails the command, naming the option and the reason."""
    try:
        yield
    except OSError as exc:
        raise click.ClickException(f"{_flag(param)} {path}: {exc.strerror or exc}") from exc


def _flag(param: click.Parameter) -> str:
    return max(param.opts, key=len)


def json_object_file(
    ctx: click.Context, param: click.Parameter, path: str | None
) -> dict[str, Any] | None:
    """The JSON object in the file (one telemetry record), read before the command runs."""
    if path is None:
        return None
    with _reading(param, path):
        data = Path(path).read_bytes()
    try:
        record = json.loads(data)
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{_flag(param)} {path}: not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{_flag(param)} {path}: not JSON text ({exc.reason})") from exc
    if not isinstance(record, dict):
        raise click.ClickException(
            f"{_flag(param)} {path}: holds a JSON {type(record).__name__}, "
            "not one object (a telemetry record)"
        )
    return record


def json_lines_file(
    ctx: click.Context, param: click.Parameter, path: str | None
) -> list[tuple[str, bytes, bool]] | None:
    """The file's records as the stream gets them, read before the command runs. A line
    that is not JSON is sent as it is (the dead-letter path is there for it), but a file
    without a line has nothing to send."""
    if path is None:
        return None
    with _reading(param, path):
        records = list(read_file(path))
    if not records:
        raise click.ClickException(
            f"{_flag(param)} {path}: no records (one JSON telemetry record a line)"
        )
    return records
