"""Write a simulated fleet as Parquet to a local path or to S3 (the raw-telemetry bucket)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["write_parquet"]


def write_parquet(frame: pd.DataFrame, uri: str, *, s3_client: Any | None = None) -> str:
    """Write ``frame`` to ``uri`` (a path or ``s3://bucket/key``); return the URI.

    The S3 client is built only when none is passed (``AWS_ENDPOINT_URL`` points it at the
    emulator), so tests can hand in a fake.
    """
    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        if not bucket or not key:
            raise ValueError(f"an S3 URI needs a bucket and a key (got {uri!r})")
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        s3_client.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        return uri
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return str(path)
