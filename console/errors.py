"""What can go wrong behind a page, as exceptions the app turns into pages (never tracebacks)."""

from __future__ import annotations

__all__ = ["NotFoundError", "PermissionDeniedError", "RefusedError", "SourceUnavailableError"]


class NotFoundError(Exception):
    """No such execution, vehicle or model: the page answers 404 and says which."""


class PermissionDeniedError(Exception):
    """The signed-in role may not do this (the console's check, or the API's 403)."""


class RefusedError(Exception):
    """The action is not possible as asked (the API's 404/409/422 on a move, with its reason)."""


class SourceUnavailableError(Exception):
    """A data source (emulator, API, MLflow, Prometheus, Alertmanager) did not answer."""
