"""``evpm-emulator start|stop|status``: run the LocalStack community core as a host process.

Why not the ``localstack`` CLI: it is deprecated, wants an account and assumes Docker. This
starts ``python -m localstack.runtime.main`` from the emulator's own venv (this interpreter) in
its own session/process group with the host-safe settings established in DESIGN.md, waits
until it is healthy *and* its snapshots are restored (``<state>/run/ready.json``), and stops
it gracefully so the shutdown snapshot is written.

Stdlib + psutil only, so it starts fast and works before anything else is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 4566
DEFAULT_SERVICES = (
    "s3,sqs,sns,ssm,dynamodb,kinesis,lambda,apigateway,stepfunctions,cloudformation,iam,sts,"
    "logs,events,cloudwatch,kms,secretsmanager,scheduler,resourcegroupstaggingapi"
)
USER_OVERRIDE_PREFIXES = ("LOCALSTACK_", "LAMBDA_")
PASSTHROUGH_EXTRA = ("EVPM_SNAPSHOT_INTERVAL_SEC", "EVPM_PERSIST_SERVICES", "EVPM_PERSISTENCE",
                     "EVPM_DYNAMODB_TTL_SWEEP_SEC", "EVPM_FAST_MOTO",
                     "EVPM_SNAPSHOT_MAX_SHARE")


# -- paths ------------------------------------------------------------------------------------
def resolve_state_dir(value: str | None) -> Path:
    """``--state-dir`` beats ``EVPM_STATE_DIR`` beats ``<repo>/.state``."""
    raw = value or os.environ.get("EVPM_STATE_DIR") or str(REPO / ".state")
    return Path(raw).expanduser().resolve()


def resolve_port(value: int | None) -> int:
    if value:
        return value
    return int(os.environ.get("EVPM_EMULATOR_PORT", DEFAULT_PORT))


def pidfile(state: Path) -> Path:
    return state / "run" / "localstack.pid"


def ready_file(state: Path) -> Path:
    return state / "run" / "ready.json"


def log_file(state: Path) -> Path:
    return state / "logs" / "localstack.log"


# -- environment ------------------------------------------------------------------------------
def emulator_env(state: Path, port: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the runtime gets: inherited env, our host-safe settings, then the
    user's own ``LOCALSTACK_*``/``LAMBDA_*`` variables back on top (they win)."""
    base = dict(os.environ if base is None else base)
    ours = {
        "OVERRIDE_IN_DOCKER": "0",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        # twisted, bound to GATEWAY_LISTEN's host by evpm_localstack.gateway_server
        "GATEWAY_SERVER": base.get("EVPM_GATEWAY_SERVER", "twisted"),
        # URLs the emulator hands out (queue URLs, stack outputs) must resolve offline.
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "SQS_ENDPOINT_STRATEGY": "path",
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        "LOCALSTACK_CLI": "0",
        "PERSISTENCE": "0",  # the core's own does nothing; evpm_localstack.persistence does it
        "EAGER_SERVICE_LOADING": "0",
        "FILESYSTEM_ROOT": str(state / "localstack"),
        "TMPDIR": str(state / "tmp"),
        "PROVIDER_OVERRIDE_DYNAMODB": "moto",
        "PROVIDER_OVERRIDE_KINESIS": "moto",
        "LAMBDA_RUNTIME_EXECUTOR": "hostprocess",
        "LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC": "0.05",
        # Queue depths (AWS/SQS) every 15 s, not LocalStack's 60: a DLQ filling up reaches
        # Prometheus within a minute and a half (exporter delay 10 s, scrape every 15 s).
        "SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL": base.get(
            "SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL", "15"
        ),
        "IN_MEMORY_CLIENT": "1",
        "SERVICES": base.get("EVPM_EMULATOR_SERVICES", DEFAULT_SERVICES),
        "EVPM_STATE_DIR": str(state),
        "EVPM_EMULATOR_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        "AWS_DEFAULT_REGION": base.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    env = {**base, **ours}
    for key, value in base.items():
        if key.startswith(USER_OVERRIDE_PREFIXES) or key in PASSTHROUGH_EXTRA:
            env[key] = value
    env["LOCALSTACK_CLI"] = "0"
    return env


# -- process helpers --------------------------------------------------------------------------
def _read_pid(state: Path) -> dict[str, Any] | None:
    with contextlib.suppress(FileNotFoundError, ValueError, json.JSONDecodeError):
        return json.loads(pidfile(state).read_text())
    return None


def _alive(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) emulator runtime."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return "localstack.runtime.main" in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def running_pid(state: Path) -> int | None:
    info = _read_pid(state)
    if info and _alive(int(info["pid"])):
        return int(info["pid"])
    return None


def health(port: int, timeout: float = 2.0) -> dict[str, Any] | None:
    url = f"http://127.0.0.1:{port}/_localstack/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(FileNotFoundError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _say(message: str, quiet: bool = False) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


# -- commands ---------------------------------------------------------------------------------
def cmd_start(state: Path, port: int, timeout: float, as_json: bool) -> int:
    pid = running_pid(state)
    if pid is not None:
        _say(f"emulator already running (pid {pid}) on http://127.0.0.1:{port}", as_json)
        if as_json:
            print(json.dumps(status_info(state, port)))
        return 0
    if health(port, timeout=1.0) is not None:
        _say(f"port {port} is answering but not from an emulator started on {state}; "
             "stop that one or pick another --port", as_json)
        return 2

    for folder in ("run", "logs", "tmp", "localstack", "snapshots"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    ready_file(state).unlink(missing_ok=True)
    log = log_file(state)
    with open(log, "ab") as handle:
        handle.write(f"\n===== evpm-emulator start {time.strftime('%F %T')} =====\n".encode())
        handle.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", "localstack.runtime.main"],
            stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
            cwd=state, env=emulator_env(state, port), start_new_session=True,
        )
    pidfile(state).write_text(json.dumps(
        {"pid": process.pid, "port": port, "started_at": time.time(), "python": sys.executable}
    ))

    started = time.monotonic()
    last_dot = started
    _say(f"starting emulator (pid {process.pid}, log {log})", as_json)
    while True:
        elapsed = time.monotonic() - started
        if process.poll() is not None:
            _say(f"emulator exited with code {process.returncode} during start-up:\n"
                 f"{_tail(log)}", as_json)
            pidfile(state).unlink(missing_ok=True)
            return 1
        if ready_file(state).exists() and health(port) is not None:
            break
        if elapsed > timeout:
            _say(f"emulator not ready after {timeout:.0f} s; last log lines:\n{_tail(log)}",
                 as_json)
            return 1
        if not as_json and time.monotonic() - last_dot > 1.0:
            print(".", end="", file=sys.stderr, flush=True)
            last_dot = time.monotonic()
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    _say(f"\nemulator ready on http://127.0.0.1:{port} in {elapsed:.1f} s", as_json)
    if as_json:
        print(json.dumps({**status_info(state, port), "startup_seconds": round(elapsed, 2)}))
    else:
        restored = _restored_services(state)
        if restored:
            _say(f"restored from snapshots: {', '.join(restored)}")
    return 0


def _restored_services(state: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
        load = json.loads(ready_file(state).read_text()).get("load") or {}
        return sorted(k for k, v in load.get("services", {}).items()
                      if v.get("status") == "restored")
    return []


def cmd_stop(state: Path, port: int, timeout: float, as_json: bool) -> int:
    import psutil

    info = _read_pid(state)
    pid = running_pid(state)
    if pid is None:
        pidfile(state).unlink(missing_ok=True)
        ready_file(state).unlink(missing_ok=True)
        _say("emulator not running", as_json)
        if as_json:
            print(json.dumps({"running": False, "stopped": False}))
        return 0

    try:
        family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    started = time.monotonic()
    _say(f"stopping emulator (pid {pid}); saving snapshots", as_json)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)  # own session: pgid == pid
    _gone, alive = psutil.wait_procs(family[:1], timeout=timeout)
    forced = bool(alive)
    if alive:
        _say(f"no graceful exit after {timeout:.0f} s: SIGKILL", as_json)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    # children that left the process group (e.g. workers in their own session)
    leftovers = [p for p in family[1:] if p.is_running()]
    for child in leftovers:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _gone, still = psutil.wait_procs(leftovers, timeout=3)
    for child in still:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    pidfile(state).unlink(missing_ok=True)
    ready_file(state).unlink(missing_ok=True)
    elapsed = time.monotonic() - started
    _say(f"emulator stopped in {elapsed:.1f} s" + (" (forced)" if forced else ""), as_json)
    if as_json:
        print(json.dumps({"running": False, "stopped": True, "forced": forced,
                          "pid": info.get("pid") if info else pid,
                          "stop_seconds": round(elapsed, 2)}))
    return 0


def status_info(state: Path, port: int) -> dict[str, Any]:
    info = _read_pid(state) or {}
    port = int(info.get("port", port))
    pid = running_pid(state)
    payload: dict[str, Any] = {
        "running": pid is not None,
        "pid": pid,
        "port": port,
        "url": f"http://127.0.0.1:{port}",
        "state_dir": str(state),
        "log": str(log_file(state)),
        "ready": pid is not None and ready_file(state).exists(),
    }
    if pid is not None:
        import psutil

        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            rss = process.memory_info().rss + sum(
                c.memory_info().rss for c in process.children(recursive=True)
            )
            payload["rss_mb"] = round(rss / 2**20, 1)
            payload["uptime_seconds"] = round(time.time() - process.create_time(), 1)
        body = health(port)
        if body is not None:
            services = body.get("services", {})
            by_state: dict[str, list[str]] = {}
            for name, service_state in sorted(services.items()):
                by_state.setdefault(service_state, []).append(name)
            payload["health"] = {"version": body.get("version"), "edition": body.get("edition"),
                                 "services": by_state}
        else:
            payload["health"] = None
        payload["restored"] = _restored_services(state)
    return payload


def cmd_status(state: Path, port: int, as_json: bool) -> int:
    payload = status_info(state, port)
    if as_json:
        print(json.dumps(payload, indent=2))
        return 0
    if not payload["running"]:
        print(f"emulator not running (state {state})")
        return 3
    health_info = payload.get("health") or {}
    running = ", ".join(health_info.get("services", {}).get("running", [])) or "-"
    print(f"emulator running: pid {payload['pid']}, {payload['url']}, "
          f"rss {payload.get('rss_mb', '?')} MB, up {payload.get('uptime_seconds', '?')} s\n"
          f"  state: {state}\n  running services: {running}\n"
          f"  restored: {', '.join(payload.get('restored', [])) or '-'}")
    return 0


# -- CLI --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evpm-emulator",
        description="Start, stop or query the host-mode LocalStack emulator (no Docker).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--state-dir", help="state folder (default: $EVPM_STATE_DIR or "
                                              "<repo>/.state)")
        sub.add_argument("--port", type=int, default=None,
                         help=f"gateway port on 127.0.0.1 (default: $EVPM_EMULATOR_PORT or "
                              f"{DEFAULT_PORT})")
        sub.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    start = commands.add_parser("start", help="start in the background and wait until ready",
                                description="Start the emulator in the background, restore "
                                            "snapshots, wait until healthy. Idempotent.")
    common(start)
    start.add_argument("--timeout", type=float, default=180.0,
                       help="seconds to wait for readiness (default 180)")
    stop = commands.add_parser("stop", help="stop gracefully (saves snapshots)",
                               description="SIGTERM the emulator's process group (it saves "
                                           "snapshots on the way out), SIGKILL after --timeout. "
                                           "Idempotent.")
    common(stop)
    stop.add_argument("--timeout", type=float, default=90.0,
                      help="seconds to wait for a graceful exit (default 90)")
    status = commands.add_parser("status", help="is it running; pid, health, restored state",
                                 description="Report whether the emulator runs, its pid, RSS, "
                                             "health and restored services. Exit 3 if not "
                                             "running (0 with --json).")
    common(status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    state = resolve_state_dir(args.state_dir)
    port = resolve_port(args.port)
    if args.command == "start":
        return cmd_start(state, port, args.timeout, args.json)
    if args.command == "stop":
        return cmd_stop(state, port, args.timeout, args.json)
    return cmd_status(state, port, args.json)


if __name__ == "__main__":
    sys.exit(main())
