"""Snapshot naming, atomic writes and the staging-folder swap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evpm_localstack import snapshot_files as sf


def test_container_filenames_are_deterministic_and_safe() -> None:
    assert sf.container_filename("arb", "s3", "S3Store") == "arb-s3-S3Store.pkl"
    assert sf.container_filename("moto", "dynamodb") == "moto-dynamodb.pkl"
    assert sf.container_filename("assets", "lambda") == "assets-lambda"
    assert sf.container_filename("moto", "a/b c") == "moto-a_b_c.pkl"
    with pytest.raises(ValueError):
        sf.container_filename("other", "x")


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.bin"
    sf.atomic_write_bytes(target, b"one")
    sf.atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_staging_commit_replaces_the_service_folder(tmp_path: Path) -> None:
    first = sf.new_staging_dir(tmp_path, "s3")
    (first / "a.pkl").write_bytes(b"1")
    sf.commit_staging_dir(tmp_path, "s3", first)
    second = sf.new_staging_dir(tmp_path, "s3")
    (second / "b.pkl").write_bytes(b"2")
    target = sf.commit_staging_dir(tmp_path, "s3", second)
    assert sorted(p.name for p in target.iterdir()) == ["b.pkl"]
    assert sf.list_snapshotted_services(tmp_path) == ["s3"]
    leftovers = [p.name for p in sf.snapshots_root(tmp_path).iterdir()]
    assert leftovers == ["s3"]


def test_half_swapped_snapshot_is_still_found(tmp_path: Path) -> None:
    # a kill between "rename current to .old" and "rename staging to current"
    old = sf.snapshots_root(tmp_path) / ".sqs.old"
    old.mkdir(parents=True)
    (old / "arb-sqs-SqsStore.pkl").write_bytes(b"x")
    (sf.snapshots_root(tmp_path) / ".sqs.tmp-123").mkdir()  # an abandoned staging folder
    assert sf.list_snapshotted_services(tmp_path) == ["sqs"]
    assert sf.find_service_snapshot(tmp_path, "sqs") == old
    assert sf.find_service_snapshot(tmp_path, "sns") is None


def test_manifest_sections_are_merged(tmp_path: Path) -> None:
    sf.update_manifest(tmp_path, "last_load", {"services": {"s3": {"status": "restored"}}})
    sf.update_manifest(tmp_path, "last_save", {"services": {}})
    manifest = json.loads((tmp_path / "snapshots" / "manifest.json").read_text())
    assert manifest["last_load"]["services"]["s3"]["status"] == "restored"
    assert "last_save" in manifest and "updated_at" in manifest
    assert sf.read_manifest(tmp_path / "nowhere") == {}
