"""The host-process runtime executor: one worker process per Lambda execution environment."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from localstack.services.lambda_.invocation.executor_endpoint import StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor

from evpm_localstack import lambda_metrics
from evpm_localstack.executor.runtimes import RuntimeNotAvailableError, runtime_python, state_dir

LOG = logging.getLogger(__name__)

BOOTSTRAP_SOURCE = Path(__file__).with_name("bootstrap.py")
END_MARKER = "\x1eEVPM_END:"
INIT_TIMEOUT_S = 10.0
STOP_GRACE_S = 2.0
LOG_DRAIN_S = 2.0
PASSTHROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_bootstrap_lock = threading.Lock()


def _bootstrap_script() -> Path:
    """Copy the worker script into a folder of its own, so nothing beside it shadows user code."""
    target = state_dir() / "runtimes" / "bootstrap" / "evpm_lambda_bootstrap.py"
    source = BOOTSTRAP_SOURCE.read_text()
    with _bootstrap_lock:
        if not target.exists() or target.read_text() != source:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_text(source)
            tmp.replace(target)
    return target


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class _Worker:
    """One running worker process with its control and log readers."""

    def __init__(self, process: subprocess.Popen, control_r: int, log_r: int) -> None:
        self.process = process
        self.messages: queue.Queue[dict] = queue.Queue()
        self.log_lock = threading.Condition()
        self.log_lines: list[str] = []
        self.finished_ids: set[str] = set()
        self.all_logs: list[str] = []
        self.started = time.monotonic()
        threading.Thread(target=self._read_control, args=(control_r,), daemon=True,
                         name=f"lambda-ctl-{process.pid}").start()
        threading.Thread(target=self._read_logs, args=(log_r,), daemon=True,
                         name=f"lambda-log-{process.pid}").start()

    def _read_control(self, fd: int) -> None:
        with os.fdopen(fd, "r", encoding="utf-8") as stream:
            for line in stream:
                if line.strip():
                    self.messages.put(json.loads(line))
        self.messages.put({"type": "exit"})

    def _read_logs(self, fd: int) -> None:
        with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as stream:
            for raw in stream:
                line = raw.rstrip("\n")
                marker = line.find(END_MARKER)
                with self.log_lock:
                    if marker >= 0:
                        if line[:marker]:
                            self.log_lines.append(line[:marker])
                        self.finished_ids.add(line[marker + len(END_MARKER):])
                    else:
                        self.log_lines.append(line)
                        self.all_logs.append(line)
                        del self.all_logs[:-1000]
                    self.log_lock.notify_all()
        with self.log_lock:
            self.finished_ids.add("*eof*")
            self.log_lock.notify_all()

    def take_logs(self, request_id: str, timeout: float = LOG_DRAIN_S) -> list[str]:
        """The log lines written up to ``request_id``'s end marker (or whatever arrived)."""
        deadline = time.monotonic() + timeout
        with self.log_lock:
            while request_id not in self.finished_ids and "*eof*" not in self.finished_ids:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.log_lock.wait(remaining)
            self.finished_ids.discard(request_id)
            lines, self.log_lines = self.log_lines, []
        return lines

    def max_memory_mb(self) -> int:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        except (OSError, ValueError):
            pass
        return 0

    def kill(self) -> None:
        """Stop the worker and everything it started (it leads its own session)."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                if self.process.stdin:
                    self.process.stdin.close()
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(STOP_GRACE_S)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


class HostProcessRuntimeExecutor(RuntimeExecutor):
    """Runs a Python zip function in a host worker process, reused while the environment lives.

    The worker is started at environment start-up and answers invocations until LocalStack
    stops the environment (keep-alive expiry, update, shutdown). A timed-out or crashed worker
    is discarded and the next invocation starts a fresh one, as AWS resets a sandbox.
    """

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self._env_vars: dict[str, str] = {}
        self._worker: _Worker | None = None
        self._pending_init_logs: list[str] = []
        self._init_duration_ms: float | None = None
        self._lock = threading.RLock()
        self._stopped = threading.Event()
        self._tmp = state_dir() / "tmp" / "lambda" / id

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        self._env_vars = {k: str(v) for k, v in env_vars.items()}
        error = self._spawn()
        if error is not None:
            raise StatusErrorException("Environment startup failed", payload=error)

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            worker, self._worker = self._worker, None
        if worker:
            worker.kill()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _environment(self) -> dict[str, str]:
        config = self.function_version.config
        code_dir = str(config.code.get_unzipped_code_location())
        python = runtime_python(config.runtime)
        version = config.runtime.removeprefix("python")
        path = [code_dir]
        # Layers are unpacked into /opt in order, later ones overwriting earlier files:
        # so the last layer comes first on the path.
        for layer in reversed(config.layers):
            root = Path(layer.code.get_unzipped_code_location())
            path += [str(root / "python" / "lib" / f"python{version}" / "site-packages"),
                     str(root / "python")]
        self._tmp.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self._tmp),
            "TMPDIR": str(self._tmp),
            "PYTHONUNBUFFERED": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update({k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ})
        env.update(self._env_vars)
        env.update({
            "LAMBDA_TASK_ROOT": code_dir,
            "LAMBDA_RUNTIME_DIR": str(python.parent.parent),
            "PYTHONPATH": os.pathsep.join(path),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
        })
        return env

    def _spawn(self) -> bytes | None:
        """Start a worker and wait for its init; return the init error payload if it failed."""
        config = self.function_version.config
        try:
            python = runtime_python(config.runtime)
            env = self._environment()
        except RuntimeNotAvailableError as exc:
            return _error_payload("Runtime.InvalidRuntime", str(exc))
        control_r, control_w = os.pipe()
        log_r, log_w = os.pipe()
        env["EVPM_CONTROL_FD"] = str(control_w)
        started = time.perf_counter()
        try:
            process = subprocess.Popen(
                [str(python), "-u", str(_bootstrap_script())],
                stdin=subprocess.PIPE,
                stdout=log_w,
                stderr=log_w,
                pass_fds=(control_w,),
                env=env,
                cwd=env["LAMBDA_TASK_ROOT"],
                start_new_session=True,
                text=True,
            )
        finally:
            os.close(control_w)
            os.close(log_w)
        worker = _Worker(process, control_r, log_r)
        init_line = (f"INIT_START Runtime Version: {config.runtime}.host "
                     f"Runtime Version ARN: evpm:hostprocess:{config.runtime}")
        message = self._next_message(worker, INIT_TIMEOUT_S)
        self._init_duration_ms = (time.perf_counter() - started) * 1000
        init_logs = [init_line, *worker.take_logs("init")]
        if message.get("type") == "ready":
            with self._lock:
                self._worker = worker
                self._pending_init_logs = init_logs
            LOG.debug("worker %s for %s ready in %.0f ms", process.pid,
                      self.function_version.qualified_arn, self._init_duration_ms)
            return None
        worker.kill()
        if message.get("type") == "init_error":
            return json.dumps(message["error"]).encode()
        if message.get("type") == "timeout":
            return _error_payload(
                "Runtime.InitTimeout",
                f"Init phase did not finish within {INIT_TIMEOUT_S:.0f} seconds",
            )
        detail = "\n".join(init_logs[-20:])
        return _error_payload("Runtime.ExitError",
                              f"Runtime exited during init with code {process.returncode}: "
                              f"{detail}")

    def _next_message(self, worker: _Worker, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"type": "timeout"}
            if self._stopped.is_set():
                return {"type": "stopped"}
            try:
                return worker.messages.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue

    # -- invocation ------------------------------------------------------------------------
    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        timeout_s = float(self.function_version.config.timeout)
        with self._lock:
            init_logs: list[str] = []
            init_ms: float | None = None
            if self._worker is None or self._worker.process.poll() is not None:
                error = self._spawn()
                if error is not None:
                    lambda_metrics.record_invocation(self.function_version, started_at=time.time(),
                                                     duration_ms=None, is_error=True, log_lines=())
                    return InvocationResult(request_id, error, is_error=True, logs="")
            worker = self._worker
            assert worker is not None
            if self._pending_init_logs:
                init_logs, self._pending_init_logs = self._pending_init_logs, []
                init_ms = self._init_duration_ms
            started = time.perf_counter()
            started_at = time.time()
            request = {
                "request_id": request_id,
                "invoked_arn": payload.get("invoked-function-arn", ""),
                "payload": payload.get("payload", ""),
                "trace_id": payload.get("trace-id", ""),
                "deadline_ms": int(time.time() * 1000 + timeout_s * 1000),
            }
            try:
                worker.process.stdin.write(json.dumps(request) + "\n")
                worker.process.stdin.flush()
                message = self._next_message(worker, timeout_s)
            except (BrokenPipeError, OSError):
                message = {"type": "exit"}
            duration_ms = (time.perf_counter() - started) * 1000
            if message["type"] in ("timeout", "exit", "stopped"):
                self._worker = None
                worker.kill()
            lines = worker.take_logs(request_id, LOG_DRAIN_S if message["type"] != "timeout"
                                     else 0.2)

        version = self.function_version.id.qualifier
        logs = [*init_logs, f"START RequestId: {request_id} Version: {version}", *lines]
        if message["type"] == "result":
            result_payload, is_error = message["payload"].encode(), False
        elif message["type"] == "error":
            result_payload, is_error = json.dumps(message["error"]).encode(), True
        elif message["type"] == "timeout":
            text = f"Task timed out after {timeout_s:.2f} seconds"
            logs.append(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} {text}")
            result_payload = _error_payload("Sandbox.Timedout",
                                            f"RequestId: {request_id} Error: {text}")
            is_error = True
        else:
            code = worker.process.returncode
            reason = f"signal: {-code}" if code is not None and code < 0 else f"exit status {code}"
            text = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
            logs.append(text)
            result_payload, is_error = _error_payload("Runtime.ExitError", text), True
        report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                  f"Billed Duration: {int(duration_ms) + 1} ms\t"
                  f"Memory Size: {self.function_version.config.memory_size} MB\t"
                  f"Max Memory Used: {worker.max_memory_mb()} MB")
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        # What CloudWatch makes of an invocation: AWS/Lambda metrics, the EMF lines' metrics.
        lambda_metrics.record_invocation(self.function_version, started_at=started_at,
                                         duration_ms=duration_ms, is_error=is_error,
                                         log_lines=logs)
        logs += [f"END RequestId: {request_id}", report]
        return InvocationResult(request_id, result_payload, is_error=is_error,
                                logs="\n".join(logs) + "\n")

    # -- addresses (the worker talks to the gateway on loopback) ----------------------------
    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        from localstack import config

        return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    def get_logs(self) -> str:
        worker = self._worker
        return "\n".join(worker.all_logs) if worker else ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        config = function_version.config
        if config.code is None or not config.runtime:
            raise RuntimeNotAvailableError(
                "the host executor runs zip functions with a managed Python runtime only"
            )
        config.code.prepare_for_execution()
        for layer in config.layers:
            if layer.code is not None:
                layer.code.prepare_for_execution()
        runtime_python(config.runtime)

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        """Nothing to undo: unpacked code is LocalStack's, runtimes are shared."""

    @classmethod
    def validate_environment(cls) -> bool:
        return True
