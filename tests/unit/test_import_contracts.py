"""The import contracts hold, and each one really catches what it forbids.

``lint-imports`` reads the contracts from ``pyproject.toml`` ([tool.importlinter]). Each
contract is then shown to fail: the packages are copied to a temporary folder, one module
that breaks exactly that contract is added, and ``lint-imports`` with the same configuration
must name it broken. The functions (``functions/<name>/``, each deployed with its own folder on
``sys.path``) are not packages import-linter can see; :func:`cross_function_imports` checks that
none imports another's modules.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = {
    "evpm": REPO / "layers/evpm/python/evpm",
    "evpm_aws": REPO / "layers/evpm/python/evpm_aws",
    "evpm_cli": REPO / "cli/evpm_cli",
    "training_job": REPO / "training_job",
    "cloudwatch_exporter": REPO / "cloudwatch_exporter",
    "infra": REPO / "infra",
}
# contract id -> (module added, its source): one violation of that contract and no other
VIOLATIONS = {
    "domain": ("evpm/_violation.py", "import boto3\n"),
    "infra": ("infra/_violation.py", "from evpm import telemetry\n"),
    "training-core": ("training_job/core/_violation.py", "from training_job.io import registry\n"),
    "runtime-not-cli": ("evpm_aws/_violation.py", "import evpm_cli.config\n"),
}


def _lint(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd, env=env, text=True, capture_output=True, timeout=300,
    )  # fmt: skip


def test_every_contract_is_kept() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(VIOLATIONS)} kept, 0 broken." in done.stdout


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages and the configuration, copied where a violation can be added safely."""
    root = tmp_path_factory.mktemp("contracts")
    for name, source in PACKAGES.items():
        shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_a_deliberate_violation_breaks_its_contract(copy: Path, contract: str) -> None:
    path, source = VIOLATIONS[contract]
    module = copy / path
    module.write_text(source)
    try:
        env = {**os.environ, "PYTHONPATH": str(copy)}
        done = _lint(copy, env)
    finally:
        module.unlink()
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"Contracts: {len(VIOLATIONS) - 1} kept, 1 broken." in done.stdout, done.stdout
    # the broken one is this contract, and the report names the offending import
    assert path.removesuffix(".py").replace("/", ".") in done.stdout


def cross_function_imports(functions_dir: Path) -> list[str]:
    """``file: module`` for each import in a function that names another function's module."""
    own = {d.name: {p.stem for p in d.glob("*.py")} for d in functions_dir.iterdir() if d.is_dir()}
    found = []
    for name, modules in own.items():
        others = set().union(*(m for other, m in own.items() if other != name)) - modules
        for file in sorted((functions_dir / name).glob("*.py")):
            for node in ast.walk(ast.parse(file.read_text())):
                names = (
                    [a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                    else []
                )  # fmt: skip
                found += [f"{name}/{file.name}: {n}" for n in names if n.split(".")[0] in others]
    return found


def test_no_function_imports_another() -> None:
    assert cross_function_imports(REPO / "functions") == []


def test_a_function_importing_another_is_caught(tmp_path: Path) -> None:
    for name, body in (("api", "from sinks import write\n"), ("scorer", "import json\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text(body)
    (tmp_path / "scorer" / "sinks.py").write_text("def write(): ...\n")
    assert cross_function_imports(tmp_path) == ["api/app.py: sinks"]
