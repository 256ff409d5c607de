"""The deps layer deploys to real AWS as it is: LightGBM's OpenMP runtime ships inside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.integration.conftest import System

ROOT = Path(__file__).resolve().parents[2]


def test_the_built_layer_carries_the_libgomp_lightgbm_links_against(system: System) -> None:
    # the system fixture deployed the stacks, so layers/build.py has built the deps layer
    layer_lib = ROOT / ".build" / "layers" / "deps" / "lib" / "libgomp.so.1"
    lightgbm = next((ROOT / ".build" / "layers" / "deps" / "python").glob(
        "lightgbm/lib/lib_lightgbm.so"), None)
    assert lightgbm is not None, "the deps layer has no LightGBM"
    needed = subprocess.run(["objdump", "-p", str(lightgbm)], capture_output=True, text=True,
                            check=True).stdout
    assert "NEEDED               libgomp.so.1" in needed
    assert layer_lib.is_file()
    # nothing newer than Amazon Linux 2023's glibc (2.34), where Lambda's python3.12 runs
    symbols = subprocess.run(["objdump", "-T", str(layer_lib)], capture_output=True, text=True,
                             check=True).stdout
    versions = {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([0-9.]+)", symbols)}
    assert versions and max(versions) <= (2, 34)
