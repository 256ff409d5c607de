"""Finding one emulator's Lambda workers of one function, on a fake /proc tree."""

from __future__ import annotations

from pathlib import Path

from evpm_cli.workers import descendants, lambda_workers


def _process(proc: Path, pid: int, parent: int, cmdline: bytes, environ: bytes) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    # the name field may hold spaces and parentheses: the parent is read after the last ')'
    (folder / "stat").write_text(f"{pid} (python3 (x) y) S {parent} {pid} {pid} 0")
    (folder / "cmdline").write_bytes(cmdline)
    (folder / "environ").write_bytes(environ)


def test_only_this_emulators_workers_of_the_function_are_found(tmp_path: Path) -> None:
    boot = b"python3\0-m\0evpm_lambda_bootstrap\0"
    scorer = b"PATH=/bin\0AWS_LAMBDA_FUNCTION_NAME=evpm-scorer\0"
    _process(tmp_path, 100, 1, b"localstack\0", b"")  # the emulator
    _process(tmp_path, 101, 100, boot, scorer)  # its scorer worker
    _process(tmp_path, 105, 101, boot, scorer)  # a grandchild counts too
    _process(tmp_path, 102, 100, boot, b"AWS_LAMBDA_FUNCTION_NAME=evpm-api\0")  # other function
    _process(tmp_path, 103, 100, b"sleep\0", scorer)  # not a worker
    _process(tmp_path, 200, 1, boot, scorer)  # another emulator's worker
    _process(tmp_path, 104, 100, boot, b"AWS_LAMBDA_FUNCTION_NAME=evpm-scorer-2\0")  # prefix
    (tmp_path / "self").mkdir()  # not a pid: ignored
    assert descendants(100, tmp_path) == {101, 102, 103, 104, 105}
    assert lambda_workers(100, "evpm-scorer", tmp_path) == [101, 105]
    assert lambda_workers(999, "evpm-scorer", tmp_path) == []
