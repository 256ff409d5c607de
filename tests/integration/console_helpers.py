"""Helpers of the console's browser test and benchmark: sign in, run axe-core, save
screenshots, and what GetExecutionHistory says about each state (derived here independently of
the console's own code, so the test compares two readings of the history)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def artifacts_dir() -> Path:
    """Screenshots go beside the run's state: ``<state>/artifacts/console``."""
    state = Path(os.environ.get("EVPM_STATE_DIR", REPO / ".state" / "test"))
    folder = state / "artifacts" / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(browser: WebDriver, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, max(1000, min(int(height) + 40, 6000)))
    browser.save_screenshot(str(path))
    browser.set_window_size(1400, 1000)
    return path


def sign_in(browser: WebDriver, base: str, key: str, *, wait_for: str = "main h1") -> None:
    """A fresh sign-in (any earlier session's cookie is dropped first)."""
    browser.get(f"{base}/login")
    browser.delete_all_cookies()
    browser.get(f"{base}/login")
    field = browser.find_element(By.ID, "api_key")
    field.send_keys(key)
    field.submit()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, wait_for)))


def axe_violations(browser: WebDriver) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (axe from npm,
    injected through the driver, so the page's own Content-Security-Policy stays strict)."""
    browser.execute_script(AXE.read_text())
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        "  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        "     nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))"
        "  .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));"
    )
    return [v for v in result if v["impact"] in SERIOUS]


def history_statuses(events: Sequence[Mapping[str, Any]], execution_status: str) -> dict[str, str]:
    """Each entered state's status by the plain reading of the events: exited without a failure
    in it → succeeded, with one → caught; still open when the execution ended → the
    execution's end (failed, aborted), or running while it runs."""
    status: dict[str, str] = {}
    failed_in: set[str] = set()
    open_states: list[str] = []
    for e in events:
        kind = e["type"]
        if kind.endswith("StateEntered"):
            name = e["stateEnteredEventDetails"]["name"]
            for other in [o for o in open_states if o in failed_in]:
                status[other] = "caught"
                open_states.remove(other)
            open_states.append(name)
            status[name] = "running"
            failed_in.discard(name)
        elif kind.endswith("StateExited"):
            name = e["stateExitedEventDetails"]["name"]
            status[name] = "caught" if name in failed_in else "succeeded"
            if name in open_states:
                open_states.remove(name)
        elif (
            not kind.startswith("Execution")
            and kind.endswith(("Failed", "TimedOut"))
            and open_states
        ):
            failed_in.add(open_states[-1])
    end = {
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "TIMED_OUT": "failed",
        "ABORTED": "aborted",
    }.get(execution_status, "running")
    for name in open_states:
        status[name] = end
    return status
