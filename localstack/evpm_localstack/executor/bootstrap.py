"""The worker that stands in for the Lambda runtime inside one execution environment.

It runs under the interpreter that matches the function's runtime, with only the
function code, its layers and the runtime's own packages (boto3) on ``sys.path`` — never the
emulator's packages. It must therefore use the standard library only.

Protocol (why it looks like this): invocations arrive as JSON lines on stdin; results go back
as JSON lines on a dedicated control pipe (fd given in ``EVPM_CONTROL_FD``) so that anything the
function prints — through Python or straight to fd 1/2 from C code — stays log output. After each
invocation the worker writes an end marker to its log stream so that the executor knows which
log lines belong to which request.
"""

import importlib
import json
import os
import sys
import time
import traceback

END_MARKER = "\x1eEVPM_END:"


class LambdaContext:
    """The context object AWS's Python runtime passes to handlers."""

    def __init__(self, request_id: str, invoked_arn: str, deadline_ms: int, trace_id: str):
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms
        self._trace_id = trace_id

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb}])"
        )


def _error(exc: BaseException, error_type: str | None = None, message: str | None = None,
           request_id: str = "") -> dict:
    # AWS reports runtime faults (import, syntax, marshalling) without a user stack trace.
    frames = [] if error_type else traceback.extract_tb(exc.__traceback__)
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id,
        "stackTrace": [
            f'  File "{f.filename}", line {f.lineno}, in {f.name}\n    {f.line or ""}\n'
            for f in frames
        ],
    }


def _load_handler(spec: str):
    """Import the handler the way AWS's runtime does, with AWS's error types and messages."""
    try:
        modname, fname = spec.rsplit(".", 1)
    except ValueError as exc:
        raise _InitError(
            _error(exc, "Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}")
        ) from None
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        raise _InitError(
            _error(exc, "Runtime.ImportModuleError", f"Unable to import module '{modname}': {exc}")
        ) from None
    except SyntaxError as exc:
        raise _InitError(
            _error(exc, "Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {exc}")
        ) from None
    except BaseException as exc:  # user code raised during init
        traceback.print_exc()
        raise _InitError(_error(exc)) from None
    handler = getattr(module, fname, None)
    if handler is None:
        raise _InitError({
            "errorMessage": f"Handler '{fname}' missing on module '{modname}'",
            "errorType": "Runtime.HandlerNotFound",
            "requestId": "",
            "stackTrace": [],
        })
    return handler


class _InitError(Exception):
    def __init__(self, payload: dict):
        super().__init__(payload["errorMessage"])
        self.payload = payload


def _send(control, message: dict) -> None:
    control.write(json.dumps(message, separators=(",", ":")) + "\n")
    control.flush()


def _end_marker(request_id: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, f"{END_MARKER}{request_id}\n".encode())


def _install_root_logging() -> None:
    """AWS's runtime gives the root logger a handler, so plain ``logging`` calls reach the logs."""
    import logging

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())


def main() -> None:
    _install_root_logging()
    control = os.fdopen(int(os.environ.pop("EVPM_CONTROL_FD")), "w", buffering=1)
    # The script's own folder must not shadow the function's modules.
    sys.path[:] = [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "")
    if task_root:
        os.chdir(task_root)
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except _InitError as exc:
        print(f"[ERROR] {exc.payload['errorType']}: {exc.payload['errorMessage']}",
              file=sys.stderr, flush=True)
        _end_marker("init")
        _send(control, {"type": "init_error", "error": exc.payload})
        return
    _end_marker("init")
    _send(control, {"type": "ready"})

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        request_id = request["request_id"]
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id") or ""
        context = LambdaContext(
            request_id, request["invoked_arn"], request["deadline_ms"], request.get("trace_id", "")
        )
        try:
            event = json.loads(request["payload"]) if request["payload"] else {}
            result = handler(event, context)
            try:
                body = json.dumps(result)
            except (TypeError, ValueError) as exc:
                message = {"type": "error", "error": _error(
                    exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}", request_id
                )}
            else:
                message = {"type": "result", "payload": body}
        except Exception as exc:
            error = _error(exc, request_id=request_id)
            print(f"[ERROR] {error['errorType']}: {error['errorMessage']}\n"
                  + "".join(traceback.format_exception(exc)), file=sys.stderr, end="")
            message = {"type": "error", "error": error}
        _end_marker(request_id)
        _send(control, message)


if __name__ == "__main__":
    main()
