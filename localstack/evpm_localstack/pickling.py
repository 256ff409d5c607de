"""Extra dill reducers for state that the core's pickler cannot rebuild correctly on its own.

Why (locks): dill 0.3.6 pickles an RLock as (count, owner) and, for an *unlocked* RLock
(owner 0), restores it with ``_acquire_restore((0, 0))`` - i.e. held by nobody, forever. The
Lambda provider's per-code ``_disk_lock`` then deadlocks the first ``prepare_for_execution``
after a restore. A lock's state means nothing in a new process: we always restore fresh,
unlocked locks.

Why: ``moto.ssm.models.ParameterDict`` is a ``defaultdict`` subclass whose ``__init__`` takes
(account_id, region_name); pickle's default defaultdict reduction calls ``cls(default_factory)``
and the load fails with "missing 1 required positional argument". We rebuild it with
``__new__`` + ``defaultdict.__init__`` and restore attributes and items ourselves.

Why (Step Functions executions): an execution keeps its worker, whose environment holds
boto clients (an ``SSLContext``), queues and weak references, none of which pickle; the whole
Step Functions store then failed to save, and the lifecycle's execution history was lost at
every restart. An execution is saved as its own fields plus its event history, and restored
with a stand-in worker that serves that history (``GetExecutionHistory``). One that was still
running when saved cannot be resumed by a new process: it comes back ``ABORTED``, saying why.
"""

from __future__ import annotations

import datetime
import threading
from collections import defaultdict
from typing import Any

from localstack.aws.api.stepfunctions import ExecutionStatus
from localstack.state.pickle import add_dispatch_entry, reducer

_installed = False


def _restore_defaultdict_subclass(
    cls: type, factory: Any, attributes: dict[str, Any], items: dict[Any, Any]
) -> Any:
    obj = cls.__new__(cls)
    defaultdict.__init__(obj, factory)
    obj.__dict__.update(attributes)
    dict.update(obj, items)
    return obj


def _reduce_defaultdict_subclass(obj: Any) -> tuple[Any, ...]:
    return (type(obj), obj.default_factory, dict(obj.__dict__), dict(obj))


# Execution fields that belong to the running process, not to the execution's record.
_EXECUTION_RUNTIME = frozenset(
    {"exec_worker", "_cloud_watch_logging_session", "_activity_store", "local_mock_test_case"}
)
RESTART_CAUSE = "The emulator restarted while this execution ran; a new process cannot resume it."


class FrozenWorker:
    """Stands in for a restored execution's worker: serves the saved event history."""

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.env = self  # what Execution.to_history_output reads: worker.env.event_manager
        self.event_manager = self

    def get_event_history(self) -> list[Any]:
        return list(self.events)

    def stop(self, **_: Any) -> None:
        """Nothing runs: stopping a restored execution changes nothing."""


def _reduce_execution(obj: Any) -> tuple[Any, ...]:
    state = {k: v for k, v in obj.__dict__.items() if k not in _EXECUTION_RUNTIME}
    env = getattr(obj.exec_worker, "env", None)
    events = list(env.event_manager.get_event_history()) if env is not None else []
    return type(obj), state, events


def _restore_execution(cls: type, state: dict[str, Any], events: list[Any]) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    obj.exec_worker = FrozenWorker(events)
    obj._cloud_watch_logging_session = None
    obj._activity_store = {}
    obj.local_mock_test_case = None
    if obj.exec_status == ExecutionStatus.RUNNING:
        obj.exec_status = ExecutionStatus.ABORTED
        obj.stop_date = datetime.datetime.now(tz=datetime.UTC)
        obj.error = "States.Runtime"
        obj.cause = RESTART_CAUSE
    return obj


def _new_rlock() -> Any:
    return threading.RLock()


def _new_lock() -> Any:
    return threading.Lock()


def _save_rlock(pickler: Any, obj: Any) -> None:
    pickler.save_reduce(_new_rlock, (), obj=obj)


def _save_lock(pickler: Any, obj: Any) -> None:
    pickler.save_reduce(_new_lock, (), obj=obj)


def install() -> None:
    """Register the reducers once per process."""
    global _installed
    if _installed:
        return
    add_dispatch_entry(type(threading.RLock()), _save_rlock)
    add_dispatch_entry(type(threading.Lock()), _save_lock)
    from moto.ssm.models import ParameterDict

    reducer(ParameterDict, restore=_restore_defaultdict_subclass)(_reduce_defaultdict_subclass)
    from localstack.services.stepfunctions.backend.execution import Execution

    reducer(Execution, restore=_restore_execution, subclasses=True)(_reduce_execution)
    _installed = True
