"""monitoring/dashboards: Grafana dashboards in provisioning format, on the exporter's metrics.

Offline checks: each file is a dashboard model Grafana's file provider loads (uid, title,
panels with ids, grid positions and Prometheus targets through the ``datasource`` variable);
every metric an expression names is one the exporter produces (``monitoring/exporter.yaml``,
read with the exporter's own naming code) or a recording rule (``monitoring/rules``); and, if
``promtool`` is installed, every expression parses (each is checked as a recording rule).
``tests/integration/test_dashboards.py`` runs them against the live Prometheus.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "monitoring" / "dashboards"
EXPORTER_CONFIG = ROOT / "monitoring" / "exporter.yaml"
RULES = ROOT / "monitoring" / "rules"
FILES = sorted(DASHBOARDS.glob("*.json"))
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself
METRIC = re.compile(
    r"(?<![\w:\-\"/])(evpm_[a-z0-9_]+|aws_[a-z0-9_]+|evpm:[a-z0-9_:]+|up)(?=\s*[{\[)]|\s*$)"
)
GRAFANA_MACRO = re.compile(r"\$\{?__|\$\w+")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def expressions() -> list[tuple[str, str, str]]:
    """``(file, panel title, expr)`` for every target of every dashboard."""
    return [
        (path.name, panel["title"], target["expr"])
        for path in FILES
        for panel in _load(path)["panels"]
        for target in panel["targets"]
    ]


def metric_names(expr: str) -> set[str]:
    """The metric names (and recording rules) an expression reads."""
    return set(METRIC.findall(expr))


def test_there_are_the_three_dashboards() -> None:
    assert [p.name for p in FILES] == [
        "evpm-models.json",
        "evpm-service-health.json",
        "evpm-stream.json",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_dashboard_is_a_provisionable_model(path: Path) -> None:
    board = _load(path)
    # GIVEN what Grafana's file provider needs: a stable uid, a title, panels
    assert re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"])
    assert board["title"].startswith("evpm / ")
    assert "evpm" in board["tags"]
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert "id" not in board or board["id"] is None  # provisioning assigns ids
    # AND the Prometheus data source is a variable, not a uid of someone's Grafana
    [variable] = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) and ids
    for panel in board["panels"]:
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["title"] and panel["description"]
        grid = panel["gridPos"]
        assert {k: type(grid[k]) for k in "hwxy"} == dict.fromkeys("hwxy", int)
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert isinstance(target["expr"], str) and target["expr"].strip()
        assert panel["fieldConfig"]["defaults"]["unit"]


def test_uids_are_unique() -> None:
    uids = [_load(p)["uid"] for p in FILES]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize(("file", "title", "expr"), expressions())
def test_expression_is_plain_promql(file: str, title: str, expr: str) -> None:
    # Grafana macros ($__rate_interval, $var) would not parse in Prometheus' own API.
    assert not GRAFANA_MACRO.search(expr), (file, title)
    assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
    assert expr.count("[") == expr.count("]") and expr.count('"') % 2 == 0
    assert metric_names(expr), f"{file} {title}: names no metric: {expr}"


def _exporter_families() -> set[str]:
    from cloudwatch_exporter.config import load_config

    return {family.name for _, _, family in load_config(EXPORTER_CONFIG).families()}


def _recording_rules() -> set[str]:
    names = set()
    for path in RULES.glob("*.yml"):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            names |= {rule["record"] for rule in group.get("rules", []) if "record" in rule}
    return names


def test_every_metric_is_one_the_exporter_or_a_rule_produces() -> None:
    # GIVEN what the exporter produces (its config, its naming) and the recording rules
    known = _exporter_families() | _recording_rules() | PROMETHEUS_OWN
    # THEN every panel reads only those
    unknown = sorted(
        f"{file} / {title}: {name}"
        for file, title, expr in expressions()
        for name in metric_names(expr) - known
    )
    assert unknown == [], "\n".join(unknown)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_expression_parses(tmp_path: Path) -> None:
    # GIVEN every expression as a recording rule (promtool checks rule files, not lone
    # expressions)
    rules = [
        {"record": f"dashboard:check_{i}", "expr": expr}
        for i, (_, _, expr) in enumerate(expressions())
    ]
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    # WHEN promtool checks them
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    # THEN all parse
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_the_provider_points_grafana_at_this_folder() -> None:
    provider = yaml.safe_load((DASHBOARDS / "provider.yaml").read_text())
    [entry] = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"].endswith("monitoring/dashboards")
