"""The deps layer pins the same versions the project venv tests with, and leaves boto3 out."""

from __future__ import annotations

import re
from importlib import metadata

import pytest

from infra.config import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "requirements.txt"
DIRECT = {"pydantic", "pydantic-settings", "numpy", "orjson", "fastapi", "mangum", "aws-lambda-powertools"}


def pins() -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line, names normalised."""
    found: dict[str, str] = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        assert match, f"not an exact pin: {line!r}"
        found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return found


def test_direct_dependencies_are_pinned_and_boto3_is_not() -> None:
    pinned = pins()
    assert pinned.keys() >= DIRECT
    assert not {"boto3", "botocore"} & pinned.keys(), "the Lambda runtime provides boto3"


@pytest.mark.parametrize(("name", "version"), sorted(pins().items()))
def test_pin_matches_the_venv(name: str, version: str) -> None:
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{name} is pinned for the layer but not installed in the venv")
    assert installed == version, f"{name}: layer pins {version}, venv has {installed}"
