"""``python -m training_job``."""

from __future__ import annotations

from training_job.cli import main

main()
