"""moto model classes made per item or per record stop being remembered by moto."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import pytest

from evpm_localstack.untracked import untrack


@pytest.fixture
def record_cls() -> Iterator[type]:
    from moto.kinesis.models import Record

    yield Record
    for name in ("__new__", "_evpm_untracked"):
        if name in Record.__dict__:
            delattr(Record, name)


def test_moto_remembers_every_record_until_untracked(record_cls: type) -> None:
    before = len(record_cls.instances_tracked)
    record_cls("pk", "ZGF0YQ==", 1, None)
    assert len(record_cls.instances_tracked) == before + 1  # moto as shipped

    untrack(record_cls)
    untrack(record_cls)  # idempotent
    assert record_cls.instances_tracked == []
    records = [record_cls("pk", "ZGF0YQ==", seq, None) for seq in range(1, 101)]
    assert record_cls.instances_tracked == []
    assert [r.sequence_number for r in records] == list(range(1, 101))
    clone = pickle.loads(pickle.dumps(records[-1]))  # snapshots still round-trip
    assert clone.to_json() == records[-1].to_json()
