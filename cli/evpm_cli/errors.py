"""Every mistake ends ``evpm`` with one line on stderr and an exit code, never a traceback.

Two kinds of mistake, two codes:

* **2, usage**: the command line itself is wrong (an unknown option, role or model, a count
  below one, a time that is not one). Click finds these while parsing; :class:`EvpmGroup`
  prints them as ``Error: <what> (see `evpm CMD --help`)`` on one line.
* **1, failure**: the command line was fine but the operation failed (the system is not up,
  AWS or the API refused, an input file is missing or not JSON, a key is revoked already).
  :func:`failure_message` turns each exception family the commands can meet into one line
  that says what failed and why.

An exception of no known family is a bug: it is reported on one line too, naming its type,
and ``EVPM_DEBUG=1`` lets the traceback through for whoever fixes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import singledispatch
from typing import Any

import click
import httpx
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as AwsConnectionError
from pydantic import ValidationError

from evpm.mlflow_rest import MlflowError
from evpm.pins import PinError
from evpm_cli.deploy import DeployError
from evpm_cli.emulator import EmulatorError
from evpm_cli.keys import ApiKeyError
from evpm_cli.lifecycle import LifecycleError
from evpm_cli.services import ServiceError
from evpm_cli.stream import StreamError

__all__ = ["DEBUG_VARIABLE", "EvpmGroup", "failure_message", "one_line", "validation_message"]

DEBUG_VARIABLE = "EVPM_DEBUG"
"""Set (to anything but empty) to see the traceback of an unexpected exception."""

_OWN_ERRORS = (
    ApiKeyError,
    DeployError,
    EmulatorError,
    LifecycleError,
    MlflowError,
    PinError,
    ServiceError,
    StreamError,
)
"""The project's exceptions: their messages are written for the user already."""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, newlines included, as one space."""
    return " ".join(str(text).split())


def validation_message(exc: ValidationError, *, options: bool = False) -> str:
    """Pydantic's errors as ``field: reason; ...`` (``--field`` when ``options``: the fields
    are a command's options, as ``send`` builds its fleet request from them)."""
    parts = []
    for error in exc.errors():
        reason = error["msg"].removeprefix("Value error, ")
        loc = ".".join(str(part) for part in error["loc"])
        if loc and options:
            loc = "--" + loc.replace("_", "-")
        parts.append(f"{loc}: {reason}" if loc else reason)
    return "; ".join(parts)


@singledispatch
def failure_message(exc: Exception) -> str:
    """What failed, on one line (without the ``Error:`` click adds); by exception family."""
    return f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_VARIABLE}=1 for the traceback)"


@failure_message.register(ClientError)
def _(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"AWS {exc.operation_name} failed: {error.get('Code')}: {error.get('Message')}"


@failure_message.register(BotoCoreError)
def _(exc: BotoCoreError) -> str:
    return f"AWS SDK: {exc}"


@failure_message.register(AwsConnectionError)
@failure_message.register(HTTPClientError)
def _(exc: BotoCoreError) -> str:
    return f"{exc}: is the system up? (`make up`)"


@failure_message.register(httpx.HTTPError)
def _(exc: httpx.HTTPError) -> str:
    return f"the API does not answer: {exc or type(exc).__name__}"


@failure_message.register(OSError)
def _(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


@failure_message.register(json.JSONDecodeError)
def _(exc: json.JSONDecodeError) -> str:
    return f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"


@failure_message.register(ValidationError)
def _(exc: ValidationError) -> str:
    return f"invalid {exc.title}: {validation_message(exc)}"


for _family in _OWN_ERRORS:
    failure_message.register(_family, str)


def _usage_line(exc: click.UsageError) -> click.UsageError:
    """The usage error as one line that names the command's help (instead of click's
    usage block of three lines above the message)."""
    message = one_line(exc.format_message())
    if exc.ctx is not None:
        message += f" (see `{exc.ctx.command_path} --help`)"
    line = click.UsageError(message)
    line.exit_code = exc.exit_code
    return line


@contextmanager
def _reported() -> Iterator[None]:
    """Turn what escapes a command into click's own error (one line, exit 1 or 2)."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # the help text itself, not an error message
    except click.UsageError as exc:
        raise (_usage_line(exc) if exc.ctx is not None else exc) from None
    except click.ClickException as exc:
        exc.message = one_line(exc.message)
        raise
    except (click.exceptions.Exit, click.Abort):
        raise
    except Exception as exc:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        raise click.ClickException(one_line(failure_message(exc))) from exc


class EvpmGroup(click.Group):
    """The ``evpm`` group: parses and runs its commands (and their subgroups') under
    :func:`_reported`, so every mistake is one line and an exit code."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _reported():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _reported():
            return super().invoke(ctx)
