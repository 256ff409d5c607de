"""The evpm ops console: a small web application on 127.0.0.1 for the people who run evpm.

Why a console of our own: on AWS they would open the Step Functions console, the model
registry and CloudWatch; the emulator has none of these, and Grafana is not installable here.
The console shows the lifecycle's executions as graphs drawn from the state machine's own
definition, the registry with each version's gate report, the fleet's predictions as charts,
and what Prometheus and Alertmanager say, and lets an ml-admin promote, roll back and start a
run. It signs users in with their evpm API key and respects its role (:mod:`evpm.access`).

Layout: :mod:`console.app` wires the pieces; each data source sits behind a ``Protocol``
(:mod:`console.lifecycle`, :mod:`console.registry`, :mod:`console.fleet`,
:mod:`console.monitoring`, :mod:`console.keys`) so the pages are tested with fakes; the route
modules under :mod:`console.routes` are thin.
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    # Lazy, so `python -m console --help` does not import FastAPI and boto3 first.
    if name == "create_app":
        from console.app import create_app

        return create_app
    raise AttributeError(name)
