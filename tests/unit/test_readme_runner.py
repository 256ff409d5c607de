"""The README runner itself: what it counts as a command, and that a wrong exit code stops it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.test_readme import readme_blocks, script_of

SAMPLE = """Intro.

```bash
X=41                     # a variable carries to the next line
test $((X + 1)) -eq 42
false                    # a refusal the text shows (exit 1)
```

<!-- readme-test: skip: takes an hour -->
```bash
make everything
```

```
not a shell block
```

```bash
echo one \\
  two
false
echo never
```
"""


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], text=True, capture_output=True, timeout=30)


def test_blocks_skips_and_continuation_lines(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(SAMPLE)
    first, skipped, last = readme_blocks(readme)
    assert next(c for _, c, _ in first.commands()).startswith("X=41")
    assert [e for _, _, e in first.commands()] == [0, 0, 1]
    assert skipped.skip == "takes an hour"
    assert next(c for _, c, _ in last.commands()) == "echo one    two"


def test_a_block_passes_only_with_the_stated_exit_codes(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(SAMPLE)
    first, _, last = readme_blocks(readme)
    assert _run(script_of(first)).returncode == 0
    failed = _run(script_of(last))
    assert failed.returncode == 1
    assert "README.md line 21: exit 1, expected 0" in failed.stderr
    assert "never" not in failed.stdout


def test_the_real_readme_has_blocks_to_run() -> None:
    blocks = readme_blocks()
    assert sum(1 for b in blocks if not b.skip) >= 5
