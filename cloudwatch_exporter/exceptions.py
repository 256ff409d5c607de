"""Errors of the exporter."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """The configuration cannot be read or is refused; ``problems`` says why, one per entry."""

    def __init__(self, path: str, problems: list[str], kinds: list[str] | None = None) -> None:
        self.path = path
        self.problems = problems
        self.kinds = kinds or []
        """Error types, e.g. ``unbounded_dimension`` (tests and callers branch on them)."""
        super().__init__(f"{path}: " + "; ".join(problems))
