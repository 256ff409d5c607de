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
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

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
    _installed = True
