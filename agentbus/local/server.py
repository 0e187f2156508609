"""A local AWS-compatible HTTP endpoint: moto's server, made safe for concurrent clients.

moto is not thread-safe: concurrent requests that update one DynamoDB item can lose updates, which
would break the coordinator's exactly-once finish (it rests on atomic conditional writes). So every
request is handled under one lock. SQS long polls would then block the whole endpoint for up to 20 s,
so a ``ReceiveMessage`` with a wait is turned into short polls, each under the lock, with the wait
spent outside it: a waiting poll tries again as soon as a request that can make a message receivable
(a send, a PutEvents, a visibility change) has been handled, and at least every ``POLL_INTERVAL_S`` (for
messages whose visibility timeout or delay runs out). moto's hot spots under this load are patched
in ``moto_speedups.py``.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from werkzeug.serving import BaseWSGIServer, make_server

POLL_INTERVAL_S = 0.25
MAX_WAIT_S = 20
# Requests after which a waiting ReceiveMessage may find a message: it polls again at once.
WAKING_ACTIONS = frozenset({"SendMessage", "SendMessageBatch", "PutEvents", "ChangeMessageVisibility",
                            "ChangeMessageVisibilityBatch", "StartMessageMoveTask"})


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class _Captured:
    def __init__(self) -> None:
        self.status = "500 INTERNAL SERVER ERROR"
        self.headers: list[tuple[str, str]] = []

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        self.status, self.headers = status, headers
        return lambda data: None


class SerializingMiddleware:
    """Runs one request at a time through the wrapped WSGI app; SQS long polls wait outside the lock."""

    def __init__(self, app: Callable, observer: Callable[[str, str], None] | None = None) -> None:
        self.app = app
        self.lock = threading.Lock()
        # Bumped (and waiting polls woken) after every request in WAKING_ACTIONS.
        self._changed = threading.Condition()
        self._generation = 0
        # Called with (service, action) for every request: the benchmark counts API calls on the wire.
        self.observer = observer

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        service, action = _service_and_action(environ, body)
        if self.observer:
            self.observer(service, action)
        wait_s, body = _strip_long_poll(environ, action, body)
        deadline = time.monotonic() + wait_s
        while True:
            captured = _Captured()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            seen = self._generation
            with self.lock:
                result = self.app(environ, captured.start_response)
                try:
                    payload = b"".join(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            if action in WAKING_ACTIONS:
                with self._changed:
                    self._generation += 1
                    self._changed.notify_all()
            remaining = deadline - time.monotonic()
            if wait_s <= 0 or remaining <= 0 or _has_messages(payload):
                start_response(captured.status, captured.headers)
                return [payload]
            with self._changed:
                if self._generation == seen:  # nothing new since this poll started: wait for a change
                    self._changed.wait(min(remaining, POLL_INTERVAL_S))


def _service_and_action(environ: dict[str, Any], body: bytes) -> tuple[str, str]:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix, _, action = target.rpartition(".")
        return _SERVICE_BY_TARGET_PREFIX.get(prefix.split("_")[0], prefix), action
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = auth.split("Credential=")[1].split("/")[3] if "Credential=" in auth else "unknown"
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = dict(parse_qsl(body.decode("utf-8", "replace"))).get("Action", "")
        if action:
            return service, action
    # REST-style APIs (Scheduler): the method and the first path segment name the operation.
    path = environ.get("PATH_INFO", "/").strip("/").split("/")[0]
    return service, f"{environ.get('REQUEST_METHOD', 'GET')} /{path}"


_SERVICE_BY_TARGET_PREFIX = {
    "AmazonSQS": "sqs",
    "AWSEvents": "events",
    "DynamoDB": "dynamodb",
    "AmazonSSM": "ssm",
    "Logs": "logs",
}


def _strip_long_poll(environ: dict[str, Any], action: str, body: bytes) -> tuple[float, bytes]:
    """For ReceiveMessage: (requested wait, the same request with WaitTimeSeconds=0)."""
    if action != "ReceiveMessage":
        return 0.0, body
    if environ.get("HTTP_X_AMZ_TARGET"):
        request = json.loads(body or b"{}")
        wait = float(request.get("WaitTimeSeconds") or 0)
        request["WaitTimeSeconds"] = 0
        return min(wait, MAX_WAIT_S), json.dumps(request).encode()
    form = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    wait = float(dict(form).get("WaitTimeSeconds") or 0)
    form = [(k, "0" if k == "WaitTimeSeconds" else v) for k, v in form]
    return min(wait, MAX_WAIT_S), urlencode(form).encode()


def _has_messages(payload: bytes) -> bool:
    return b'"Messages"' in payload or b"<Message>" in payload


def _quiet_handler():
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietRequestHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request drowns the output
            pass

    return QuietRequestHandler


class LocalEndpoint:
    """moto's server on 127.0.0.1, in a background thread, behind the serializing middleware."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 observer: Callable[[str, str], None] | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.observer = observer
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalEndpoint:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from agentbus.local import moto_speedups

        moto_speedups.apply()
        app = SerializingMiddleware(DomainDispatcherApplication(create_backend_app), observer=self.observer)
        try:
            self._server = make_server(self.host, self.port, app, threaded=True, request_handler=_quiet_handler())
        except OSError as error:
            raise RuntimeError(f"cannot listen on {self.host}:{self.port}: {error.strerror}") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
