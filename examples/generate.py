#!/usr/bin/env python3
"""Write the README's sample files from the fleet simulator (the telemetry the models learnt).

Why generated rather than typed: the readings must be ones the models' features make sense of
(a vehicle's hourly history, as the stream carries it), and a regenerated file must be the same
file. Deterministic by ``--seed``.

    .venv/bin/python examples/generate.py            # rewrites examples/*.json{,l}

- ``fleet.jsonl``: 48 hourly readings of two healthy vehicles (``evpm send --file``);
- ``record.json``: the last reading of the first one (``evpm predict --file``, ``POST /predict``);
- ``explain.json``: that vehicle's readings as ``{"records": [...]}`` (``POST /explain``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026, help="fleet seed [default: 2026]")
    parser.add_argument("--hours", type=int, default=48, help="readings kept per vehicle")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write [default: here]")
    args = parser.parse_args(argv)

    from evpm_cli.fleet_stream import FleetRequest, plan_fleet

    plan = plan_fleet(FleetRequest(vehicles=2, hours=168 + 1, seed=args.seed, prefix="EX"))
    records = [json.loads(data) for _, data, _ in plan.replay()]
    kept = records[-2 * args.hours :]
    first = kept[0]["vehicle_id"]
    own = [r for r in kept if r["vehicle_id"] == first]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fleet.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    (args.out / "record.json").write_text(json.dumps(own[-1], indent=2) + "\n")
    (args.out / "explain.json").write_text(json.dumps({"records": own}) + "\n")
    print(f"wrote {len(kept)} readings of 2 vehicles to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
