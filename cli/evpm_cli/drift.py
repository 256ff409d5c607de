"""``evpm drift``: run the drift monitor now, see its verdicts, its retraining decisions.

The monitor is a function in the emulated cloud (``evpm-drift-monitor``, on a schedule); these
commands invoke it and read what it and the retraining trigger (``evpm-retrain``) recorded, in
the tables the ``evpm-drift`` stack names (``evpm-drift-history``, ``evpm-retrain-triggers``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key

__all__ = ["history", "latest", "run", "triggers"]

MONITOR_FUNCTION = "evpm-drift-monitor"
HISTORY_TABLE = "evpm-drift-history"
TRIGGERS_TABLE = "evpm-retrain-triggers"
MODELS = ("ev-anomaly", "ev-classifier", "ev-rul")


def run(
    lam: Any, *, window_minutes: int | None, publish: bool, start: datetime | None = None
) -> dict[str, Any]:
    """Invoke the monitor synchronously; its summary, or RuntimeError with the function's error."""
    request: dict[str, Any] = {"publish": publish}
    if window_minutes:
        request["window_minutes"] = window_minutes
    if start is not None:
        request["start"] = start.isoformat()
    response = lam.invoke(FunctionName=MONITOR_FUNCTION, Payload=json.dumps(request).encode())
    body = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError"):
        raise RuntimeError(f"the monitor failed: {body.get('errorMessage', body)}")
    return body


def history(dynamodb: Any, model: str, limit: int) -> list[dict[str, Any]]:
    """A model's judged windows, newest first."""
    table = dynamodb.Table(HISTORY_TABLE)
    items = table.query(
        KeyConditionExpression=Key("model").eq(model), ScanIndexForward=False, Limit=limit
    )["Items"]
    return [_plain(i) for i in items]


def latest(dynamodb: Any) -> list[dict[str, Any]]:
    """Each model's newest window (models never judged are left out)."""
    return [h[0] for m in MODELS if (h := history(dynamodb, m, 1))]


def triggers(dynamodb: Any, limit: int) -> list[dict[str, Any]]:
    """The retraining trigger's decisions (and its cool-down), newest first."""
    table = dynamodb.Table(TRIGGERS_TABLE)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    decisions = [_plain(i) for i in items if str(i["id"]).startswith("event#")]
    decisions.sort(key=lambda i: i.get("decided_at", ""), reverse=True)
    return decisions[:limit]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's Decimals as plain numbers, the stored report parsed."""
    out = json.loads(json.dumps(item, default=float))
    if isinstance(out.get("report"), str):
        out["report"] = json.loads(out["report"])
    return out
