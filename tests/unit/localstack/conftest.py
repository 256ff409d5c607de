"""Make the emulator's pure helpers importable from the project interpreter.

``evpm_localstack`` is installed only in the emulator venv (Python 3.13, with LocalStack); the
modules tested here (shard index, snapshot files, ctl environment) import neither LocalStack
nor moto, so the project's 3.12 venv can load them straight from the source folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[3] / "localstack"
if str(SOURCE) not in sys.path:
    sys.path.insert(0, str(SOURCE))
