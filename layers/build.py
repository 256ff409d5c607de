#!/usr/bin/env python3
"""Build the Lambda dependency layer locally, without Docker.

CDK's Docker bundling cannot run on this machine, so the layer is assembled by pip itself:
``pip install --target`` for ``manylinux2014_x86_64`` (plus ``manylinux_2_28``, the only tag
numpy still publishes), ``--python-version 3.12 --only-binary=:all:`` fetches the wheels that
Lambda's x86_64 Python 3.12 runtime needs, whatever the host is, so the result deploys to real
AWS unchanged. The build is skipped when
``requirements.txt`` has not changed since the last one (a stamp file holds its hash).

The layer ships its bytecode (``__pycache__/*.cpython-312.pyc``), compiled here by the same
CPython 3.12 as Lambda's runtime. Why: ``/opt`` is read-only on Lambda, so without it every
cold start compiles numpy, pydantic, lightgbm, scipy... from source again (most of the import
time). The ``.pyc`` files are ``unchecked-hash``: CDK zips assets with a fixed timestamp, so
timestamp-checked bytecode would look stale after deployment and be ignored; the layer is
immutable (always rebuilt whole), so the check has nothing to protect.

Usage:
    .venv/bin/python layers/build.py            # build if requirements changed
    .venv/bin/python layers/build.py --force    # rebuild from scratch
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "requirements.txt"
DEFAULT_OUT = REPO_ROOT / ".build" / "layers" / "deps"
STAMP_NAME = ".requirements.sha256"
BYTECODE_STAMP_NAME = ".bytecode"
# Lambda's interpreter, the one the wheels are fetched for (PLATFORM_ARGS) and the bytecode is
# compiled for: a .pyc carries its interpreter's tag and magic number.
TARGET_PYTHON = (3, 12)

# Lambda's limit for a function plus all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# Folders no function imports at run time; dropping them keeps the layer small.
PRUNE_DIRS = ("__pycache__", "tests", "test")
# manylinux2014 (glibc 2.17) is the widest tag, but numpy >= 2.3 publishes only
# manylinux_2_28 wheels; Lambda's python3.12 runtime (Amazon Linux 2023, glibc 2.34) runs both.
PLATFORM_ARGS = (
    "--platform", "manylinux2014_x86_64",
    "--platform", "manylinux_2_28_x86_64",
    "--implementation", "cp",
    "--python-version", ".".join(map(str, TARGET_PYTHON)),
    "--only-binary=:all:",
)  # fmt: skip


def log(message: str) -> None:
    """Progress on stderr, flushed, so it interleaves with pip's output in order."""
    print(f"[layers/build] {message}", file=sys.stderr, flush=True)


def requirements_hash(requirements: Path) -> str:
    """Hash of the requirements plus the target platform, the stamp's content."""
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(" ".join(PLATFORM_ARGS).encode())
    return digest.hexdigest()


def tree_size(root: Path) -> int:
    """Bytes of all regular files under ``root`` (the unzipped layer size)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def prune(site: Path) -> int:
    """Remove caches and test suites under ``site``; return how many folders went.

    Only folders named in ``PRUNE_DIRS`` directly inside a package are removed, never a
    top-level package that happens to have such a name.
    """
    removed = 0
    for name in PRUNE_DIRS:
        for path in sorted(site.rglob(name), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and path.parent != site:
                shutil.rmtree(path)
                removed += 1
    return removed


def pip_install(requirements: Path, target: Path, python: str) -> None:
    """Install the pinned wheels for Lambda's platform into ``target``."""
    cmd = [
        python, "-m", "pip", "install",
        "--disable-pip-version-check", "--no-compile", "--upgrade",
        "--target", str(target),
        *PLATFORM_ARGS,
        "-r", str(requirements),
    ]  # fmt: skip
    log("running: " + " ".join(cmd))
    subprocess.run(cmd, check=True)


BYTECODE = {"python": ".".join(map(str, TARGET_PYTHON)), "invalidation": "unchecked-hash"}
"""How the layer's bytecode is compiled (the bytecode stamp's content)."""


def compile_bytecode(site: Path, python: str) -> None:
    """Compile every module under ``site`` for Lambda's CPython, once, at build time.

    Runs ``compileall`` with the given interpreter, which must be the target version: pyc
    files are only read by the interpreter version that wrote them.
    """
    version = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    if tuple(map(int, version)) != TARGET_PYTHON:
        raise SystemExit(
            f"{python} is Python {'.'.join(version)}; the layer's bytecode must be compiled by "
            f"CPython {'.'.join(map(str, TARGET_PYTHON))} (Lambda's runtime): pass --python"
        )
    started = time.monotonic()
    cmd = [python, "-m", "compileall", "-q", "-j", "0",
           "--invalidation-mode", BYTECODE["invalidation"], str(site)]  # fmt: skip
    subprocess.run(cmd, check=True)
    log(f"compiled bytecode in {time.monotonic() - started:.1f}s")


# Shared libraries the wheels load but Lambda's python3.12 runtime (Amazon Linux 2023) lacks:
# LightGBM's lib_lightgbm.so needs the GNU OpenMP runtime. Lambda puts a layer's ``lib/`` on
# LD_LIBRARY_PATH (``/opt/lib``). The host's copy (Debian package libgomp1) needs nothing newer
# than GLIBC_2.34, which is Amazon Linux 2023's glibc, and nothing but libc.
NATIVE_LIBS = {"libgomp.so.1": "libgomp1"}
NATIVE_LIB_DIRS = (Path("/usr/lib/x86_64-linux-gnu"), Path("/lib/x86_64-linux-gnu"),
                   Path("/usr/lib64"), Path("/usr/lib"))


def find_native_lib(name: str, search: tuple[Path, ...] = NATIVE_LIB_DIRS) -> Path:
    for folder in search:
        if (folder / name).is_file():
            return (folder / name).resolve()
    raise SystemExit(
        f"{name} not found in {', '.join(map(str, search))}: the layer ships it for Lambda "
        f"(LightGBM needs it). Install it with:  sudo apt-get install -y {NATIVE_LIBS[name]}"
    )


def ensure_native_libs(out: Path, search: tuple[Path, ...] = NATIVE_LIB_DIRS) -> list[Path]:
    """Copy the native libraries into ``out/lib`` unless an identical copy is there."""
    copied = []
    for name in NATIVE_LIBS:
        source = find_native_lib(name, search)
        target = out / "lib" / name
        if target.is_file() and target.read_bytes() == source.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied.append(target)
        log(f"shipped {name} from {source}")
    return copied


def ensure_bytecode(out: Path, python: str) -> None:
    """Compile the layer's bytecode unless the stamp says it is there, compiled the same way."""
    stamp = out / BYTECODE_STAMP_NAME
    wanted = json.dumps(BYTECODE, sort_keys=True)
    if stamp.is_file() and stamp.read_text().strip() == wanted:
        return
    compile_bytecode(out / "python", python)
    stamp.write_text(wanted + "\n")


def build(requirements: Path, out: Path, *, force: bool, python: str) -> Path:
    """Build ``out/python`` from ``requirements`` unless the stamp says it is current."""
    if not requirements.is_file():
        raise SystemExit(f"requirements file not found: {requirements}")
    site = out / "python"
    stamp = out / STAMP_NAME
    wanted = requirements_hash(requirements)
    if not force and site.is_dir() and stamp.is_file() and stamp.read_text().strip() == wanted:
        log(f"up to date ({requirements.name} unchanged), skipping: {site}")
        ensure_bytecode(out, python)  # a layer built before the layer carried bytecode
        ensure_native_libs(out)  # ... or before it carried libgomp
        return site

    started = time.monotonic()
    log(f"building {site} from {requirements}")
    # Build beside the old layer and swap at the end, so a failed build leaves none half-made.
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "python").mkdir(parents=True)
    pip_install(requirements, staging / "python", python)
    removed = prune(staging / "python")
    log(f"pruned {removed} __pycache__/test folders")
    ensure_bytecode(staging, python)
    ensure_native_libs(staging)
    (staging / STAMP_NAME).write_text(wanted + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    log(f"built in {time.monotonic() - started:.1f}s")
    return site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the evpm Lambda dependency layer (CPython 3.12, manylinux x86_64) "
        "with pip, no Docker. Skips the build when requirements.txt is unchanged.",
    )
    parser.add_argument(
        "-r", "--requirements", type=Path, default=DEFAULT_REQUIREMENTS,
        help=f"pinned requirements (default: {DEFAULT_REQUIREMENTS.relative_to(REPO_ROOT)})",
    )  # fmt: skip
    parser.add_argument(
        "-o", "--out", type=Path, default=DEFAULT_OUT,
        help=f"layer folder; wheels go to OUT/python (default: {DEFAULT_OUT.relative_to(REPO_ROOT)})",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if requirements are unchanged"
    )
    parser.add_argument(
        "--python", default=sys.executable,
        help="CPython 3.12 whose pip runs the install and which compiles the bytecode "
        "(default: this one)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    site = build(
        args.requirements.resolve(), args.out.resolve(), force=args.force, python=args.python
    )
    size = tree_size(site)
    share = 100 * size / LAMBDA_UNZIPPED_LIMIT
    log(f"layer size unzipped: {size / 1024 / 1024:.1f} MiB ({share:.0f}% of Lambda's 250 MiB)")
    if size > LAMBDA_UNZIPPED_LIMIT:
        log("layer exceeds Lambda's unzipped limit on its own")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
