"""Plux registration of the host-process executor (``LAMBDA_RUNTIME_EXECUTOR=hostprocess``)."""

from __future__ import annotations

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class HostProcessExecutorPlugin(RuntimeExecutorPlugin):
    name = "hostprocess"

    def load(self, *args, **kwargs):
        from evpm_localstack.executor.executor import HostProcessRuntimeExecutor

        return HostProcessRuntimeExecutor
