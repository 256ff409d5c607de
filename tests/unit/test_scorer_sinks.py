"""functions/scorer/sinks.py: wire format and parallel batch writes of predictions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.unit.conftest import accepted_records, load_function

TABLE = "evpm-predictions"


@pytest.fixture(scope="module")
def sinks() -> Any:
    return load_function("scorer", "sinks")


def _create_predictions_table() -> None:
    """The predictions table's key schema, in the current moto context."""
    import boto3

    boto3.client("dynamodb").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "vehicle_id", "KeyType": "HASH"},
                   {"AttributeName": "ts", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "vehicle_id", "AttributeType": "S"},
                              {"AttributeName": "ts", "AttributeType": "S"}])


class KeyFailingDynamo:
    """batch_write_item from many threads: items of vehicles in ``fail`` stay unprocessed, a
    request holding a reading time in ``error_ts`` raises."""

    def __init__(self, fail: set[str], error_ts: frozenset[str] | set[str] = frozenset()) -> None:
        self.fail, self.error_ts = fail, error_ts
        self.lock = threading.Lock()
        self.written: dict[tuple[str, str], dict] = {}
        self.threads: set[int] = set()
        self.calls = 0

    def batch_write_item(self, RequestItems: dict[str, list[dict]]) -> dict:
        from botocore.exceptions import ClientError

        [(table, requests)] = RequestItems.items()
        with self.lock:
            self.calls += 1
            self.threads.add(threading.get_ident())
        if {r["PutRequest"]["Item"]["ts"]["S"] for r in requests} & self.error_ts:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}},
                              "BatchWriteItem")
        left = []
        for request in requests:
            item = request["PutRequest"]["Item"]
            if item["vehicle_id"]["S"] in self.fail:
                left.append(request)
            else:
                with self.lock:
                    self.written[(item["vehicle_id"]["S"], item["ts"]["S"])] = item
        return {"UnprocessedItems": {table: left} if left else {}}


@pytest.mark.parametrize("concurrency", [1, 4])
def test_parallel_chunks_report_exactly_the_unwritten_records(sinks, make_payload,
                                                              concurrency: int) -> None:
    # GIVEN 300 predictions (12 chunks), where EV-3's items are never processed
    accepted = accepted_records(make_payload, 300)
    client = KeyFailingDynamo(fail={"EV-3"})
    sink = sinks.DynamoPredictionSink(TABLE, client=client, concurrency=concurrency,
                                      max_attempts=2, sleep=lambda s: None)
    # WHEN they are written
    failed = sink.write(accepted)
    # THEN exactly EV-3's records are reported, every other one is stored once
    expected_failed = {a.sequence_number for a in accepted if a.prediction.vehicle_id == "EV-3"}
    assert set(failed) == expected_failed and len(failed) == len(expected_failed)
    assert len(client.written) == len(accepted) - len(expected_failed)
    if concurrency > 1:
        assert len(client.threads) > 1  # the chunks really overlapped


def test_a_chunk_that_errors_fails_only_its_own_records(sinks, make_payload) -> None:
    # GIVEN 300 predictions; the request holding record #130 always errors
    accepted = accepted_records(make_payload, 300)
    poisoned = accepted[130].prediction.ts
    client = KeyFailingDynamo(fail=set(), error_ts={poisoned})
    sink = sinks.DynamoPredictionSink(TABLE, client=client, max_attempts=2, sleep=lambda s: None)
    # WHEN they are written
    failed = sink.write(accepted)
    # THEN the records of that chunk (#125-#149) are reported, all others stored
    assert failed == [a.sequence_number for a in accepted[125:150]]
    assert len(client.written) == 275


def test_concurrency_must_be_positive(sinks) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        sinks.DynamoPredictionSink(TABLE, client=object(), concurrency=0)


def test_scored_at_is_kept(sinks, make_payload) -> None:
    [record] = accepted_records(make_payload, 1)
    client = KeyFailingDynamo(fail=set())
    sinks.DynamoPredictionSink(TABLE, client=client).write([record])
    [item] = client.written.values()
    scored = datetime.strptime(item["scored_at"]["S"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(scored.replace(tzinfo=UTC) - record.prediction.scored_at).total_seconds() < 1


def test_default_client_writes_real_predictions_without_client_side_validation(
        sinks, make_payload, aws_env) -> None:
    """The skipped check is only botocore's own: the items still reach the table intact."""
    import boto3
    from botocore.validate import ParamValidationDecorator
    from moto import mock_aws

    accepted = accepted_records(make_payload, 30)
    with mock_aws():
        _create_predictions_table()
        sink = sinks.DynamoPredictionSink(TABLE)
        # botocore wraps its request serializer in a validator unless validation is off
        assert isinstance(boto3.client("dynamodb")._serializer, ParamValidationDecorator)
        assert not isinstance(sink.client._serializer, ParamValidationDecorator)
        assert sink.write(accepted) == []
        stored = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    expected = {(r.prediction.vehicle_id, r.prediction.ts) for r in accepted}
    assert {(i["vehicle_id"]["S"], i["ts"]["S"]) for i in stored} == expected


def test_stored_readings_are_read_back_as_the_vehicles_past(sinks, make_payload, aws_env) -> None:
    """What the sink stores is what a fresh scorer's history reads back: the readings bit for
    bit, per vehicle, the newest ``limit`` strictly before the asked time, across pages."""
    from moto import mock_aws

    from evpm.past_readings import unpack_readings
    from evpm_aws.past_readings import DynamoPastReadings

    accepted = accepted_records(make_payload, 70)  # 7 vehicles, 10 readings each
    with mock_aws():
        _create_predictions_table()
        assert sinks.DynamoPredictionSink(TABLE).write(accepted) == []
        mine = [r for r in accepted if r.prediction.vehicle_id == "EV-3"]
        cut = mine[8].prediction.ts  # ask for what came before the 9th reading
        source = DynamoPastReadings(TABLE, concurrency=3)
        past = source.before({"EV-3": cut, "EV-5": mine[0].prediction.ts, "EV-9": cut}, limit=6)
        paged = DynamoPastReadings(TABLE)
        # a page of 2 at a time (as a 1 MB page limit would cut it) gives the same answer
        import evpm_aws.past_readings as module
        module._MAX_PAGE, saved = 2, module._MAX_PAGE
        try:
            again = paged.before({"EV-3": cut}, limit=6)
        finally:
            module._MAX_PAGE = saved
    assert set(past) == {"EV-3"}  # EV-5 has nothing before its first reading; EV-9 nothing
    want = mine[2:8]
    assert past["EV-3"].stamps == [r.prediction.ts for r in want]
    assert past["EV-3"].values.tobytes() == unpack_readings([r.reading for r in want]).tobytes()
    assert again["EV-3"].stamps == past["EV-3"].stamps
