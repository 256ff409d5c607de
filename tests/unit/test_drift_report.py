"""evpm drift report: the page shows what the monitor recorded, charts embedded, values escaped."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from evpm_cli.drift_report import render

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _window(end: str, psi: float, drifted: bool) -> dict:
    columns = [
        {
            "column": "Motor_Vibration",
            "role": "input",
            "test": "ks",
            "rows": 300,
            "psi": psi,
            "psi_limit": 0.2,
            "statistic": 0.4,
            "p_value": 1e-9,
            "p_adjusted": 1e-8,
            "drifted": drifted,
        },
        {
            "column": "<b>SoC</b>",
            "role": "input",
            "test": "ks",
            "rows": 300,
            "psi": 0.01,
            "psi_limit": 0.2,
            "statistic": 0.01,
            "p_value": 0.9,
            "p_adjusted": 1.0,
            "drifted": False,
        },
    ]
    return {
        "model": "ev-rul",
        "version": 3,
        "window_start": end.replace("12:", "11:"),
        "window_end": end,
        "rows": 300,
        "status": "drift" if drifted else "ok",
        "drifted": ["Motor_Vibration"] if drifted else [],
        "quality_status": "ok",
        "quality_problems": [],
        "psi": {"Motor_Vibration": psi, "<b>SoC</b>": 0.01},
        "quality": {"rul_mae": 30.0},
        "report": {"drift": {"columns": columns, "skipped": {}}},
    }


def test_the_page_draws_the_recorded_verdicts_and_escapes_them() -> None:
    history = {
        "ev-rul": [
            _window("2024-05-01T12:00:00+00:00", 2.5, True),
            _window("2024-05-01T11:55:00+00:00", 0.05, False),
        ],
        "ev-anomaly": [],
    }
    decisions = [
        {
            "decided_at": "2024-05-01T12:00:05+00:00",
            "event_id": "e-1",
            "type": "DriftDetected",
            "action": "start",
            "reason": "started",
            "execution_arn": "arn:...:drift-1",
        }
    ]
    page = render(history, decisions, now=NOW)
    # the verdict, escaped, with a bar chart, a PSI-over-time and a quality chart (real PNGs)
    assert "&lt;b&gt;SoC&lt;/b&gt;" in page and "<b>SoC</b>" not in page
    assert "ev-rul v3" in page and "Motor_Vibration" in page and "drift-1" in page
    images = [part.split("'", 1)[0] for part in page.split("src='data:image/png;base64,")[1:]]
    assert len(images) == 3
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert "ev-anomaly" not in page  # never judged: left out, not drawn empty


def test_an_empty_history_says_what_to_do() -> None:
    page = render({"ev-rul": []}, [], now=NOW)
    assert "evpm drift run" in page and "No drift event" in page
    assert json.dumps(page)  # one string, nothing else
