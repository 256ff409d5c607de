"""What a cold start pays for: the handlers' imports (and GC passes over them), and the
dependency layer's bytecode.

``bench/cold_start.py`` measures cold starts; these tests keep the causes from coming back.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Never imported when a handler module is (its init): pandas, scikit-learn and MLflow are not
# even in the dependency layer (an import would fail the function on AWS, and this venv has
# them); LightGBM (and scipy behind it) is imported when a booster is loaded, alongside the
# model downloads; pydantic-settings is not needed to read the environment.
NOT_AT_INIT = ("pandas", "sklearn", "mlflow", "lightgbm", "scipy", "pydantic_settings")
ENV = {
    "PREDICTIONS_TABLE": "evpm-predictions",
    "LABELS_TABLE": "evpm-labels",
    "DLQ_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/evpm-scoring-dlq",
    "ALERT_BUS_NAME": "evpm-alerts",
    "ALERT_DEDUP_TABLE": "evpm-alert-dedup",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",  # as in a Lambda container
}
PROBE = (
    "import gc, json, sys; import app; "
    "print(json.dumps({'modules': sorted({m.split('.')[0] for m in sys.modules}), "
    "'gc_enabled': gc.isenabled(), 'frozen': gc.get_freeze_count()}))"
)


@pytest.mark.parametrize("function", ["scorer", "api"])
def test_a_handler_init_loads_no_heavy_or_absent_package_and_leaves_the_gc_on(
    function: str,
) -> None:
    # GIVEN a fresh interpreter with the function's folder first on the path (as Lambda's)
    code = ROOT / "functions" / function
    # WHEN the handler module is imported (the init phase)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=code,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(code), **ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    loaded = set(probe["modules"])
    # THEN none of them was imported
    assert "app" in loaded
    assert loaded.isdisjoint(NOT_AT_INIT), sorted(loaded & set(NOT_AT_INIT))
    # AND the cyclic GC, paused during init, runs again, with what init built frozen
    assert probe["gc_enabled"]
    assert probe["frozen"] > 10_000


def _layer_build():
    spec = importlib.util.spec_from_file_location("evpm_layer_build", ROOT / "layers" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_layer_build_compiles_bytecode_that_lambda_uses_whatever_the_timestamps(
    tmp_path: Path,
) -> None:
    # GIVEN a layer folder as pip leaves it (sources only)
    build = _layer_build()
    package = tmp_path / "python" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 42\n")
    # WHEN its bytecode is ensured (twice: the second finds the stamp and does nothing)
    build.ensure_bytecode(tmp_path, sys.executable)
    pyc = package / "__pycache__" / f"__init__.{sys.implementation.cache_tag}.pyc"
    first = pyc.stat().st_mtime_ns
    build.ensure_bytecode(tmp_path, sys.executable)
    # THEN the module has a pyc of Lambda's CPython that is never checked against its source
    # (flags 0b01: hash-based, unchecked), since CDK zips every file with the same timestamp
    assert sys.version_info[:2] == build.TARGET_PYTHON
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01
    assert pyc.stat().st_mtime_ns == first
    assert json.loads((tmp_path / build.BYTECODE_STAMP_NAME).read_text()) == build.BYTECODE


def test_the_layer_ships_libgomp_for_lambda_and_says_how_to_get_it(tmp_path: Path) -> None:
    # GIVEN a system library folder holding libgomp (a stand-in file)
    build = _layer_build()
    system = tmp_path / "system"
    system.mkdir()
    (system / "libgomp.so.1").write_bytes(b"\x7fELF stand-in")
    layer = tmp_path / "layer"
    # WHEN the native libraries are ensured twice
    first = build.ensure_native_libs(layer, (system,))
    second = build.ensure_native_libs(layer, (system,))
    # THEN the layer's lib/ (on Lambda's LD_LIBRARY_PATH as /opt/lib) holds it, copied once
    assert first == [layer / "lib" / "libgomp.so.1"] and second == []
    assert (layer / "lib" / "libgomp.so.1").read_bytes() == b"\x7fELF stand-in"
    # AND without it the build stops with the package to install
    with pytest.raises(SystemExit, match="apt-get install -y libgomp1"):
        build.ensure_native_libs(tmp_path / "other", (tmp_path / "empty",))

