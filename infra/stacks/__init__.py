"""One stack per concern; ``infra.app.build`` wires them together."""
