"""The two Lambda layers every evpm function runs with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

if TYPE_CHECKING:
    from infra.config import InfraSettings

ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/tests", "**/.pytest_cache"]
# The dependency layer keeps its bytecode: ``layers/build.py`` compiles it for Lambda's CPython
# (``unchecked-hash``, as CDK zips with a fixed timestamp), and /opt is read-only, so without it
# every cold start would compile numpy, pydantic, scipy... again. Source folders (the core layer,
# the functions) still drop whatever __pycache__ a local test run left there.
DEPS_ASSET_EXCLUDES = ["**/tests", "**/.pytest_cache", ".requirements.sha256", ".bytecode"]


class EvpmLayers(Construct):
    """Third-party dependencies (built by ``layers/build.py``) and the shared ``evpm`` package.

    Both folders are already in Lambda's ``python/`` layout, so they are zipped as they are:
    no Docker bundling, which this machine does not have. Split in two so a change to domain
    code does not re-upload numpy.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings) -> None:
        super().__init__(scope, construct_id)
        settings.require_layer_dirs()
        runtime = [lambda_.Runtime.PYTHON_3_12]
        arch = [lambda_.Architecture.X86_64]
        self.deps = lambda_.LayerVersion(
            self,
            "Deps",
            code=lambda_.Code.from_asset(str(settings.deps_layer_dir), exclude=DEPS_ASSET_EXCLUDES),
            compatible_runtimes=runtime,
            compatible_architectures=arch,
            description="evpm third-party dependencies (layers/deps/requirements.txt)",
        )
        self.core = lambda_.LayerVersion(
            self,
            "Core",
            code=lambda_.Code.from_asset(str(settings.core_layer_dir), exclude=ASSET_EXCLUDES),
            compatible_runtimes=runtime,
            compatible_architectures=arch,
            description="evpm shared domain package (layers/evpm)",
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        """Layers in the order Lambda should stack them."""
        return [self.deps, self.core]
