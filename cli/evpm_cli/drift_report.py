"""``evpm drift report``: one self-contained HTML page of what the drift monitor found.

Why our own page rather than Evidently's: Evidently 0.7 recomputes drift from the raw reference
and current data with its own tests, so its report would show other verdicts than the ones the
monitor acted on; this page draws exactly what the monitor recorded (``evpm-drift-history``)
and what the retraining trigger did (``evpm-retrain-triggers``). Charts are matplotlib PNGs
embedded as data URIs, so the file opens anywhere, offline, with no script. Every value from
the tables is escaped.

Per model: the latest window's verdict per column (PSI against its limit, the adjusted p-value,
drifted or not) as a table and a bar chart, PSI over the recorded windows for the columns that
came closest to their limit, live quality over time when outcomes exist; then the retraining
decisions.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["render"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#1b1f24}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}
th{background:#f2f4f7}.drift{color:#b42318;font-weight:600}.ok{color:#067647}.muted{color:#667085}
img{max-width:100%;border:1px solid #eee}
"""


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # no display: draw to memory
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(width, height))
    return figure, axes


def _close(figure: Any) -> None:
    from matplotlib import pyplot as plt

    plt.close(figure)


def _bars(columns: Sequence[Mapping[str, Any]]) -> str:
    """PSI of each column over its limit: past 1 (and significant) is drift."""
    shown = sorted(columns, key=lambda c: c["psi"] / max(c["psi_limit"], 1e-9))
    figure, axes = _figure(8, max(2.5, 0.28 * len(shown)))
    ratios = [c["psi"] / max(c["psi_limit"], 1e-9) for c in shown]
    colours = ["#b42318" if c["drifted"] else "#98a2b3" for c in shown]
    axes.barh([c["column"] for c in shown], ratios, color=colours)
    axes.axvline(1.0, color="#1b1f24", linewidth=1, linestyle="--")
    axes.set_xlabel("PSI / its limit (drift needs > 1 and a significant test)")
    figure.tight_layout()
    try:
        return _png(figure)
    finally:
        _close(figure)


def _lines(
    windows: Sequence[Mapping[str, Any]], columns: Sequence[str], key: str, label: str
) -> str:
    figure, axes = _figure(8, 3)
    times = [datetime.fromisoformat(w["window_end"]) for w in windows]
    for column in columns:
        values = [(w.get(key) or {}).get(column) for w in windows]
        axes.plot(
            times,
            [float("nan") if v is None else float(v) for v in values],
            marker="o",
            label=column,
        )
    axes.set_ylabel(label)
    axes.legend(fontsize=7, loc="upper left")
    figure.autofmt_xdate()
    figure.tight_layout()
    try:
        return _png(figure)
    finally:
        _close(figure)


def _model(name: str, windows: Sequence[Mapping[str, Any]]) -> str:
    e = html.escape
    latest = windows[0]
    report = latest.get("report") or {}
    columns = (report.get("drift") or {}).get("columns", [])
    status_class = "drift" if latest["status"] == "drift" else "ok"
    out = [
        f"<h2>{e(name)} v{e(str(latest['version']))}</h2>",
        f"<p>Latest window {e(latest['window_start'][:19])} to {e(latest['window_end'][:19])} UTC: "
        f"{int(latest['rows']):,} rows, drift <span class='{status_class}'>{e(latest['status'])}</span>"
        f" ({e(', '.join(latest.get('drifted') or []) or 'none')}), quality "
        f"{e(latest['quality_status'])} ({e(', '.join(latest.get('quality_problems') or []) or 'none')}).</p>",
    ]
    if columns:
        out.append(f"<img alt='PSI over limit per column, {e(name)}' src='{_bars(columns)}'>")
        out.append(
            "<table><tr><th>column</th><th>role</th><th>rows</th><th>PSI</th><th>limit</th>"
            "<th>test</th><th>p (Holm)</th><th>drifted</th></tr>"
        )
        for c in sorted(columns, key=lambda c: -c["psi"] / max(c["psi_limit"], 1e-9)):
            out.append(
                f"<tr><td>{e(c['column'])}</td><td>{e(c['role'])}</td><td>{int(c['rows']):,}</td>"
                f"<td>{c['psi']:.3f}</td><td>{c['psi_limit']:.3f}</td><td>{e(c['test'])}</td>"
                f"<td>{c['p_adjusted']:.2g}</td>"
                f"<td class='{'drift' if c['drifted'] else 'ok'}'>{'yes' if c['drifted'] else 'no'}</td></tr>"
            )
        out.append("</table>")
    else:
        skipped = (report.get("drift") or {}).get("skipped", {})
        out.append(
            f"<p class='muted'>No column judged: {e(str(skipped) or 'no report stored')}.</p>"
        )
    ordered = list(reversed(windows))
    if len(ordered) > 1:
        top = sorted(
            {c for w in ordered for c in (w.get("psi") or {})},
            key=lambda c: -max(float((w.get("psi") or {}).get(c) or 0) for w in ordered),
        )[:5]
        if top:
            out.append(
                f"<img alt='PSI over time, {e(name)}' src='{_lines(ordered, top, 'psi', 'PSI')}'>"
            )
        figures = sorted(
            {m for w in ordered for m, v in (w.get("quality") or {}).items() if v is not None}
        )
        if figures:
            out.append(
                f"<img alt='live quality over time, {e(name)}' "
                f"src='{_lines(ordered, figures, 'quality', 'live quality')}'>"
            )
    return "\n".join(out)


def render(
    history: Mapping[str, Sequence[Mapping[str, Any]]],
    decisions: Sequence[Mapping[str, Any]],
    *,
    now: datetime | None = None,
) -> str:
    """The page: ``history`` = model → its windows, newest first (``evpm-drift-history``
    items); ``decisions`` = the retraining trigger's records, newest first."""
    e = html.escape
    at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>evpm drift report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>evpm drift report</h1><p class='muted'>Generated {e(at)} from evpm-drift-history "
        "and evpm-retrain-triggers.</p>",
    ]
    judged = {m: w for m, w in history.items() if w}
    if not judged:
        parts.append("<p>No window judged yet: <code>evpm drift run</code> judges one now.</p>")
    for name, windows in judged.items():
        parts.append(_model(name, windows))
    parts.append("<h2>Retraining decisions</h2>")
    if not decisions:
        parts.append("<p class='muted'>No drift event has reached the retraining trigger.</p>")
    else:
        parts.append(
            "<table><tr><th>decided</th><th>event</th><th>type</th><th>action</th>"
            "<th>reason</th><th>execution or detail</th></tr>"
        )
        for d in decisions:
            run = str(d.get("execution_arn", "")).rsplit(":", 1)[-1]
            parts.append(
                f"<tr><td>{e(str(d.get('decided_at', ''))[:19])}</td><td>{e(str(d.get('event_id', '')))}</td>"
                f"<td>{e(str(d.get('type', '')))}</td><td>{e(str(d.get('action', '')))}</td>"
                f"<td>{e(str(d.get('reason', '')))}</td><td>{e(run or str(d.get('detail', '')))}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
