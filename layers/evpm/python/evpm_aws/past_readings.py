"""Vehicles' stored past readings from the DynamoDB predictions table.

The :class:`evpm.past_readings.PastReadings` source the scorer and the API use on a history
miss: one ``Query`` per vehicle (newest first, strictly before the new reading, projected to
the time and the packed reading, consistent so an acknowledged write is seen), several in
flight at once because a cold scorer meets a whole batch of vehicles it does not hold. The
AWS client is a parameter, built only when none is passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from evpm.past_readings import READING_ATTRIBUTE, Past, unpack_readings
from evpm.predictions import PARTITION_KEY, SORT_KEY

__all__ = ["DynamoPastReadings"]

_MAX_PAGE = 1000  # items per Query page asked for (a page also stops at 1 MB)


class DynamoPastReadings:
    """``Query`` the predictions table for each vehicle's last readings before a time.

    Items stored before readings were kept (no :data:`READING_ATTRIBUTE`) are skipped: the
    past is then shorter, never wrong.
    """

    def __init__(self, table_name: str, *, client: Any | None = None, concurrency: int = 8) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.table_name = table_name
        self._client = client
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    def before(self, wanted: Mapping[str, str], *, limit: int) -> dict[str, Past]:
        client = self.client  # built once, here, not racing in the pool's threads
        items = list(wanted.items())
        if len(items) <= 1 or self.concurrency == 1:
            found = [self._one(client, vid, ts, limit) for vid, ts in items]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ddb-past")
            found = list(self._pool.map(lambda kv: self._one(client, *kv, limit), items))
        return {vid: past for (vid, _), past in zip(items, found, strict=True) if past.stamps}

    def _one(self, client: Any, vehicle_id: str, ts: str, limit: int) -> Past:
        """The vehicle's last ``limit`` readings strictly before ``ts``, oldest first."""
        stamps: list[str] = []
        blobs: list[bytes] = []
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :v AND #sk < :t",
            "ExpressionAttributeNames": {
                "#pk": PARTITION_KEY,
                "#sk": SORT_KEY,
                "#r": READING_ATTRIBUTE,
            },
            "ExpressionAttributeValues": {":v": {"S": vehicle_id}, ":t": {"S": ts}},
            "ProjectionExpression": "#sk, #r",
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        while len(stamps) < limit:
            request["Limit"] = min(limit - len(stamps), _MAX_PAGE)
            response = client.query(**request)
            for item in response.get("Items", []):
                blob = item.get(READING_ATTRIBUTE, {}).get("B")
                if blob is not None and len(stamps) < limit:
                    stamps.append(item[SORT_KEY]["S"])
                    blobs.append(bytes(blob))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        stamps.reverse()
        blobs.reverse()
        return Past(stamps=stamps, values=unpack_readings(blobs))
