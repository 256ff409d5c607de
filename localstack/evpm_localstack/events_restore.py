"""EventBridge after a restart: the rules' target senders and schedules, rebuilt.

Why: LocalStack's events provider keeps, beside its store (rules, targets: what is
snapshotted), two dictionaries of live objects - a ``RuleService`` per rule and a target
sender per target - that only ``PutRule``/``PutTargets`` fill. After a restore the rules and
targets are back but those dictionaries are empty, so every ``PutEvents`` that matched a
restored rule failed inside the provider with a ``KeyError`` (the audit queue of evpm's
alerts stayed empty after ``make down && make up``) and scheduled rules never fired. Here
they are rebuilt from the restored store, as ``PutRule``/``PutTargets`` would have built
them, and a rule with a schedule gets its job again.
"""

from __future__ import annotations

from typing import Any


def rebuild(provider: Any, stores: Any | None = None) -> dict[str, int]:
    """Target senders and rule services (with schedules) for every restored rule."""
    from localstack.services.events.rule import RuleService

    if stores is None:
        from localstack.services.events.models import events_stores as stores
    counts = {"rules": 0, "targets": 0, "schedules": 0}
    for account_id, region, store in stores.iter_stores():
        for bus in store.event_buses.values():
            for rule in bus.rules.values():
                service = provider._rule_services_store.get(rule.arn)
                if service is None:
                    service = RuleService(rule)
                    provider._rule_services_store[rule.arn] = service
                counts["rules"] += 1
                for target in rule.targets.values():
                    if f"{rule.arn}-{target['Id']}" not in provider._target_sender_store:
                        provider.create_target_sender(
                            target, rule.arn, rule.name, region, account_id
                        )
                        counts["targets"] += 1
                if service.schedule_cron and rule.targets:
                    job = provider._get_scheduled_rule_job_function(account_id, region, rule)
                    service.create_schedule_job(job)
                    counts["schedules"] += 1
    return counts
