"""Find the emulator's Lambda worker processes of one function (stdlib only, Linux /proc).

Why: the stream benchmark and the worker-kill test SIGKILL a function's workers to prove
that nothing is lost when an execution environment dies; they must hit *this* emulator's
workers of *that* function, not another emulator's or another function's.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["descendants", "lambda_workers"]

BOOTSTRAP = b"evpm_lambda_bootstrap"
"""Marker in a worker's command line (the executor's bootstrap module)."""


def descendants(root: int, proc: Path = Path("/proc")) -> set[int]:
    """PIDs below ``root``, by parent links (workers lead their own session, so a process
    group or session would miss them; the parent is kept)."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or unreadable
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def lambda_workers(emulator_pid: int, function: str, proc: Path = Path("/proc")) -> list[int]:
    """Sorted PIDs of ``emulator_pid``'s worker processes that run ``function``."""
    wanted = f"AWS_LAMBDA_FUNCTION_NAME={function}".encode()
    found = []
    for pid in sorted(descendants(emulator_pid, proc)):
        try:
            cmdline = (proc / str(pid) / "cmdline").read_bytes()
            environ = (proc / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if BOOTSTRAP in cmdline and wanted in environ:
            found.append(pid)
    return found
