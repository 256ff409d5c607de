"""Build the evpm CDK app once per session, offline, for Template and Annotations assertions.

The app is built the way ``cdk synth`` builds it (same ``build`` function, same ``cdk.json``
feature flags), except that the dependency layer points at an empty placeholder under a temp
folder through ``EVPM_DEPS_LAYER_DIR``: these tests check the templates, not the layer, and
must not depend on (or fake) the real ``layers/build.py`` output.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from infra.app import build
from infra.config import REPO_ROOT, InfraSettings

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def cdk_context() -> dict[str, object]:
    """Feature flags from ``cdk.json``, so the tests see what the real synth produces."""
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


@pytest.fixture(scope="session")
def placeholder_deps_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty layer folder in Lambda's layout, in a temp location only."""
    root = tmp_path_factory.mktemp("deps-layer")
    (root / "python").mkdir()
    return root


@pytest.fixture(scope="session")
def settings(placeholder_deps_layer: Path) -> InfraSettings:
    """Settings from the environment, with the placeholder layer and no account or region.

    The environment is patched only while the settings are read: a session-long patch would
    leak the empty layer into later suites that deploy for real.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVPM_DEPS_LAYER_DIR", str(placeholder_deps_layer))
        for var in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "EVPM_ACCOUNT", "EVPM_REGION"):
            mp.delenv(var, raising=False)
        return InfraSettings()


@pytest.fixture(scope="session")
def stacks(settings: InfraSettings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stack]:
    """Every evpm stack, by stack name, in one app (cross-stack references resolve)."""
    app = App(context=cdk_context(), outdir=str(tmp_path_factory.mktemp("cdk.out")))
    return build(app, settings)


@pytest.fixture(scope="session")
def template(stacks: dict[str, Stack]) -> Callable[[str], Template]:
    """``template("evpm-scoring")``: the synthesised template of one stack, cached."""
    cache: dict[str, Template] = {}

    def get(name: str) -> Template:
        if name not in cache:
            cache[name] = Template.from_stack(stacks[name])
        return cache[name]

    return get
