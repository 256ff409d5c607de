"""Put telemetry on the Kinesis stream in batches, retrying throttled entries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

BATCH = 500


class StreamError(RuntimeError):
    """Records the stream kept refusing: the send is incomplete."""


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def put_all(kinesis, stream: str, records: Iterable[tuple[str, bytes, bool]],
            on_progress: Callable[[int], None] = lambda n: None,
            max_attempts: int = 8) -> SendReport:
    report = SendReport()
    started = time.perf_counter()
    batch: list[dict] = []

    def flush() -> None:
        pending = batch[:]
        for attempt in range(max_attempts):
            response = kinesis.put_records(StreamName=stream, Records=pending)
            failed = [entry for entry, result in zip(pending, response["Records"], strict=True)
                      if "ErrorCode" in result]
            report.sent += len(pending) - len(failed)
            on_progress(len(pending) - len(failed))
            if not failed:
                return
            report.retried += len(failed)
            pending = failed
            time.sleep(min(2.0, 0.05 * 2**attempt))
        raise StreamError(f"{len(pending)} records still refused by the stream after "
                          f"{max_attempts} attempts ({report.sent} sent)")

    for key, data, _valid in records:
        batch.append({"PartitionKey": key, "Data": data})
        if len(batch) == BATCH:
            flush()
            batch.clear()
    if batch:
        flush()
    report.seconds = time.perf_counter() - started
    return report
