"""Every shell block of the README runs as written against the system ``make up`` started.

Why: a README example that fails is where a new user stops trusting the tool. Each ```` ```bash
```` block runs in one bash process (so a block's variables carry from line to line, as in a
terminal), line by line: a line must exit 0, or the code its comment states (``(exit 1)``, for
the examples that show a refusal). A block may be left out only with a marker on the line
before it, ``<!-- readme-test: skip: <reason> -->``, and only for what cannot run inside the
suite (``make test`` itself, benchmarks of tens of minutes); the first test below lists them.

These tests run last (``conftest.pytest_collection_modifyitems``): the lifecycle examples
train, promote and roll back models, which the other tests must not see.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, System

README = REPO / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(?P<reason>.+?)\s*-->")
EXPECTED_EXIT = re.compile(r"\(exit (?P<code>\d+)\)")
MAX_SKIPPED = 2  # the quick start (make up / make test) and the benchmarks


@dataclass(frozen=True)
class Block:
    """One ```` ```bash ```` block: where it starts, its lines, and why it is skipped, if it is."""

    line: int
    lines: tuple[str, ...]
    skip: str | None

    @property
    def name(self) -> str:
        first = next((c for c in self.commands() if c[1]), (0, "empty", 0))[1]
        return f"L{self.line}: {first[:60]}"

    def commands(self) -> list[tuple[int, str, int]]:
        """``(line number, command, expected exit code)`` of each command line."""
        out: list[tuple[int, str, int]] = []
        pending, start = "", 0
        for offset, raw in enumerate(self.lines, start=self.line + 1):
            text = raw.rstrip()
            if not pending and (not text.strip() or text.lstrip().startswith("#")):
                continue
            if not pending:
                start = offset
            if text.endswith("\\"):
                pending += text[:-1] + " "
                continue
            command = pending + text
            pending = ""
            expected = EXPECTED_EXIT.search(command.partition(" #")[2])
            out.append((start, command, int(expected["code"]) if expected else 0))
        return out


def readme_blocks(path: Path = README) -> list[Block]:
    """The README's bash blocks, in order, with their skip reasons."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            marker = SKIP.search(lines[i - 1]) if i else None
            blocks.append(
                Block(i + 1, tuple(lines[i + 1 : end]), marker["reason"] if marker else None)
            )
            i = end
        i += 1
    return blocks


def script_of(block: Block) -> str:
    """The block as a bash script that stops at the first line with an unexpected exit code."""
    parts = ["set -uo pipefail"]
    for line, command, expected in block.commands():
        where = shlex.quote(f"README.md line {line}")
        parts += [
            f"echo {shlex.quote('$ ' + command)} >&2",
            command,
            f"rc=$?; if [ $rc -ne {expected} ]; then "
            f'echo {where}": exit $rc, expected {expected}" >&2; exit 1; fi',
        ]
    return "\n".join(parts) + "\n"


BLOCKS = readme_blocks()


def test_every_bash_block_is_run_or_says_why_not() -> None:
    assert len(BLOCKS) >= 6, "fewer bash blocks than the README has: is the parser broken?"
    skipped = [(b.line, b.skip) for b in BLOCKS if b.skip]
    assert len(skipped) <= MAX_SKIPPED, f"more blocks skipped than the suite allows: {skipped}"
    for block in BLOCKS:
        assert block.commands(), f"README.md line {block.line}: an empty bash block"


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.skip], ids=lambda b: b.name)
def test_readme_block_runs_as_written(system: System, block: Block) -> None:
    started = time.perf_counter()
    done = subprocess.run(
        ["bash", "-c", script_of(block)],
        cwd=REPO,
        env={**os.environ, "NO_COLOR": "1"},
        text=True,
        capture_output=True,
        timeout=1200,
    )
    took = time.perf_counter() - started
    assert done.returncode == 0, (
        f"README block at line {block.line} failed after {took:.0f} s\n"
        f"--- stdout (tail)\n{done.stdout[-3000:]}\n--- stderr (tail)\n{done.stderr[-5000:]}"
    )
