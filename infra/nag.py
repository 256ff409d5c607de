"""cdk-nag wiring: the AwsSolutions pack on every stack, and one way to write a suppression.

Every suppression names the rule, the resource it applies to and why the finding does not hold
(or is accepted) for evpm; ``suppress`` refuses a reason too short to say that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aws_cdk import Aspects
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions

if TYPE_CHECKING:
    from constructs import IConstruct

_MIN_REASON = 40


def apply_checks(scope: IConstruct, *, verbose: bool = True) -> None:
    """Run AwsSolutions checks over ``scope`` at synth; findings become error annotations."""
    Aspects.of(scope).add(AwsSolutionsChecks(verbose=verbose))


def suppress(
    construct: IConstruct,
    rule: str,
    reason: str,
    *,
    applies_to: Sequence[str | dict[str, str]] | None = None,
    children: bool = True,
) -> None:
    """Suppress one cdk-nag rule on one construct (and its children), with a written reason.

    ``applies_to`` narrows IAM findings to the exact action or resource the reason covers, so a
    later, unrelated wildcard on the same policy is still reported.
    """
    if len(reason) < _MIN_REASON:
        raise ValueError(f"nag suppression {rule} needs a specific reason, got {reason!r}")
    NagSuppressions.add_resource_suppressions(
        construct,
        [
            NagPackSuppression(
                id=rule, reason=reason, applies_to=list(applies_to) if applies_to else None
            )
        ],
        apply_to_children=children,
    )
