"""A local AWS-compatible HTTP endpoint: moto's server, made safe for concurrent clients.

moto is not thread-safe: concurrent requests that update one DynamoDB item can lose updates, which
would break the coordinator's exactly-once finish (it rests on atomic conditional writes). So every
request is handled under one lock. SQS long polls would then block the whole endpoint for up to 20 s,
so a ``ReceiveMessage`` with a wait is turned into short polls, each under the lock, with the wait
spent outside it: a waiting poll tries again as soon as a request that can make a message receivable
(a send, a PutEvents, a visibility change) has been handled, and at least every ``POLL_INTERVAL_S`` (for
messages whose visibility timeout or delay runs out). moto's hot spots under this load are patched
in ``moto_speedups.py``.

``LocalEndpoint`` runs the server in a process of its own: the emulated AWS side and its clients (the
local runtime's functions, the benchmark) then use a core each instead of sharing one interpreter lock.
The endpoint counts the API calls it serves by ``service:Action`` and answers ``GET /_agentbus/calls``
with the counts (the benchmark's calls counted on the wire).

It also enforces what the bus policy enforces on AWS (``SourceGuard``): a ``PutEvents`` entry with a
reserved ``source`` is refused unless the caller signs with the access key id that owns the source
(see ``principals.py``). Every ``PutEvents`` goes through EventBridge's own rules first (``put_events.py``): a
call over the size limit is refused whole (HTTP 400 ``ValidationException``), an entry whose ``Detail`` is not a
JSON object fails alone (``MalformedDetail``).
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import io
import json
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import parse_qs, parse_qsl, urlencode

from agentbus.local import put_events
from agentbus.local.write_meter import Tally, WriteMeter

POLL_INTERVAL_S = 0.25
MAX_WAIT_S = 20
# Requests after which a waiting ReceiveMessage may find a message: it polls again at once.
WAKING_ACTIONS = frozenset({"SendMessage", "SendMessageBatch", "PutEvents", "ChangeMessageVisibility",
                            "ChangeMessageVisibilityBatch", "StartMessageMoveTask"})
CALLS_PATH = "/_agentbus/calls"
# The DynamoDB write units charged so far, by table (``write_meter.WriteMeter``).
WRITE_UNITS_PATH = "/_agentbus/write-units"
# POST: every ReceiveMessage waiting now returns at once (empty, unless a message came): how a local runtime
# stops its pollers, which long-poll 20 s as Lambda's do, without waiting out their polls.
WAKE_POLLS_PATH = "/_agentbus/wake-polls"
# Worker threads: a long poll holds one while it waits (outside the lock), so keep plenty.
SERVER_THREADS = 128
CONNECTION_LIMIT = 2000
_REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60
# The endpoint process reads its SourceGuard from this variable (JSON, set by LocalEndpoint).
GUARD_VARIABLE = "AGENTBUS_RESERVED_SOURCES"
# Set (to 1) by an owner that reads the write meter (the benchmark): metering costs two item reads per write.
METER_VARIABLE = "AGENTBUS_METER_WRITES"
NOT_AUTHORIZED_FOR_SOURCE = "NotAuthorizedForSourceException"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class _Captured:
    def __init__(self) -> None:
        self.status = "500 INTERNAL SERVER ERROR"
        self.headers: list[tuple[str, str]] = []

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
        self.status, self.headers = status, headers
        return lambda data: None


class SourceGuard:
    """Refuses ``PutEvents`` entries whose ``Source`` is reserved, on ``bus_name``, from any access key id but
    the source's owner, the way EventBridge reports a bus-policy denial of one entry: that entry gets
    ``ErrorCode`` ``NotAuthorizedForSourceException`` and counts in ``FailedEntryCount``, the call's other
    entries go through (``PutEventsResultEntry`` in the EventBridge API reference)."""

    def __init__(self, bus_name: str, owners: dict[str, str]) -> None:
        self.bus_name = bus_name
        self.owners = dict(owners)

    def to_json(self) -> str:
        return json.dumps({"bus_name": self.bus_name, "owners": self.owners})

    @classmethod
    def from_json(cls, text: str) -> SourceGuard:
        data = json.loads(text)
        return cls(data["bus_name"], data["owners"])

    def refusals(self, access_key: str | None, entries: list[Any]) -> dict[int, dict[str, str]]:
        """The result entry of every refused entry, by its index in the request."""
        refused = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            source = entry.get("Source")
            if not isinstance(source, str) and source is not None:
                # The screen refuses such a call whole (put_events rule 8); one that reached the backend another way
                # is refused here, whatever the text inside (a list matched rules by any of its elements).
                refused[index] = {"ErrorCode": "InvalidArgument", "ErrorMessage": "Parameter Source is not a string"}
                continue
            owner = self.owners.get(source) if isinstance(source, str) else None
            bus = str(entry.get("EventBusName") or "default").rsplit("/", 1)[-1]
            if owner is not None and owner != access_key and bus == self.bus_name:
                refused[index] = {
                    "ErrorCode": NOT_AUTHORIZED_FOR_SOURCE,
                    "ErrorMessage": "You do not have permissions to publish events with this source onto this "
                                    f"event bus (source {source!r} is reserved to the agentbus function that owns it)",
                }
        return refused

    @staticmethod
    def merge(payload: bytes | None, refused: dict[int, dict[str, str]], total: int) -> bytes:
        """The response to the whole request: the backend's answer for the entries it got (None: it got none),
        with the refused entries' results put back at their places."""
        response: dict[str, Any] = json.loads(payload) if payload else {"FailedEntryCount": 0, "Entries": []}
        accepted = iter(response.get("Entries", []))
        response["Entries"] = [refused[i] if i in refused else next(accepted, {}) for i in range(total)]
        response["FailedEntryCount"] = int(response.get("FailedEntryCount", 0)) + len(refused)
        return json.dumps(response).encode()


def _access_key(environ: dict[str, Any]) -> str | None:
    """The access key id a SigV4-signed request was signed with (``Credential=KEY/date/region/...``)."""
    auth: str = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        return None
    return auth.split("Credential=", 1)[1].split("/", 1)[0]


class SerializingMiddleware:
    """Runs one request at a time through the wrapped WSGI app; SQS long polls wait outside the lock."""

    def __init__(self, app: Callable[..., Any], observer: Callable[[str, str], None] | None = None,
                 guard: SourceGuard | None = None, meter: WriteMeter | None = None) -> None:
        self.app = app
        self.guard = guard
        self.meter = meter
        self.lock = threading.Lock()
        # Bumped (and waiting polls woken) after every request in WAKING_ACTIONS.
        self._changed = threading.Condition()
        self._generation = 0
        # Bumped by a POST to WAKE_POLLS_PATH: a poll that sees it change stops waiting.
        self._wakes = 0
        # Called with (service, action) for every request: the benchmark counts API calls on the wire.
        self.observer = observer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CALLS_PATH and isinstance(self.observer, WireCounter):
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(self.observer.counts()).encode()]
        if environ.get("PATH_INFO") == WRITE_UNITS_PATH:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(self.meter.counts() if self.meter is not None else {}).encode()]
        if environ.get("PATH_INFO") == WAKE_POLLS_PATH and environ.get("REQUEST_METHOD") == "POST":
            with self._changed:
                self._wakes += 1
                self._changed.notify_all()
            start_response("204 No Content", [])
            return []
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ.get("HTTP_CONTENT_ENCODING", "").strip().lower() == "gzip":
            # moto reads a gzip body as the request it holds: so do the rules, before it.
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                pass  # not gzip after all: moto answers it as it can
            else:
                del environ["HTTP_CONTENT_ENCODING"]
        service, action = _service_and_action(environ, body)
        if self.observer:
            self.observer(service, action)
        if service == "events" and action == "PutEvents":
            guard, key = self.guard, _access_key(environ)
            screened = put_events.screen(body, (lambda entries: guard.refusals(key, entries)) if guard else None)
            if screened.error is not None:  # refused whole, before moto sees it: nothing is put
                start_response("400 Bad Request", put_events.error_headers(screened.error))
                return [screened.error]
            body = screened.body
            if screened.refused:
                return self._put_events_screened(environ, start_response, screened.refused, screened.total, body)
        wait_s, body = _strip_long_poll(environ, action, body)
        deadline = time.monotonic() + wait_s
        wakes = self._wakes
        while True:
            seen = self._generation
            captured, payload = self._call_moto(environ, body)
            if action in WAKING_ACTIONS:
                with self._changed:
                    self._generation += 1
                    self._changed.notify_all()
            remaining = deadline - time.monotonic()
            if wait_s <= 0 or remaining <= 0 or _has_messages(payload) or self._wakes != wakes:
                start_response(captured.status, captured.headers)
                return [payload]
            with self._changed:
                if self._generation == seen and self._wakes == wakes:  # nothing new: wait for a change
                    self._changed.wait(min(remaining, POLL_INTERVAL_S))


    def _call_moto(self, environ: dict[str, Any], body: bytes) -> tuple[_Captured, bytes]:
        """One request to moto with ``body``, under the lock (moto is not thread-safe): its status and payload."""
        captured = _Captured()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        with self.lock, put_events.calling_as(_access_key(environ)):
            result = self.app(environ, captured.start_response)
            try:
                payload = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        return captured, payload

    def _put_events_screened(self, environ: dict[str, Any], start_response: Callable[..., Any],
                             refused: dict[int, dict[str, str]], total: int, body: bytes) -> Iterable[bytes]:
        """PutEvents with some entries refused: the others go to moto, the answer covers them all."""
        status, headers, payload = "200 OK", [("Content-Type", "application/x-amz-json-1.1")], None
        if len(refused) < total:
            captured, payload = self._call_moto(environ, body)
            with self._changed:
                self._generation += 1
                self._changed.notify_all()
            if not captured.status.startswith("200"):  # the whole call failed: that is the answer
                start_response(captured.status, captured.headers)
                return [payload]
            status = captured.status
            headers = [(k, v) for k, v in captured.headers if k.lower() != "content-length"]
        merged = SourceGuard.merge(payload, refused, total)
        start_response(status, [*headers, ("Content-Length", str(len(merged)))])
        return [merged]


def _service_and_action(environ: dict[str, Any], body: bytes) -> tuple[str, str]:
    """The service and action moto dispatches a request to: the service of a signed request's credential scope,
    the action of an ``Action`` in the query string before the target's (after its last dot)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") if "Credential=" in auth else []
    signed = scope[3].lower() if len(scope) == 5 else None
    if target:
        prefix, _, action = target.rpartition(".")
        service = signed or _SERVICE_BY_TARGET_PREFIX.get(prefix.split("_")[0], prefix)
        # As moto reads it: the first Action of the query string, a blank one falling through to the target's.
        actions = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).get("Action") or [""]
        return service, actions[0] or action
    service = signed or "unknown"
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


class WireCounter(Tally):
    """API calls served, by ``service:Action`` (REST operations as ``METHOD /segment``)."""

    def __call__(self, service: str, action: str) -> None:
        self.add(f"{service}:{action}")


def make_app(observer: Callable[[str, str], None] | None = None,
             guard: SourceGuard | None = None, meter_writes: bool = False) -> SerializingMiddleware:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from agentbus.local import moto_gaps, moto_speedups

    moto_speedups.apply()
    moto_gaps.apply()
    put_events.apply()
    put_events.guard_backend(guard.refusals if guard is not None else None)
    meter = WriteMeter() if meter_writes else None
    if meter is not None:
        meter.install()
    return SerializingMiddleware(DomainDispatcherApplication(create_backend_app), observer=observer, guard=guard,
                                 meter=meter)


def serve(host: str, port: int) -> int:
    """The endpoint process (``python -m agentbus.local.server``): prints ``ready <port>`` once it listens (or
    ``error <why>``), then serves until its standard input closes (the owner stopped it, or went away) or
    SIGTERM.

    waitress serves it: unlike werkzeug's development server, it keeps HTTP/1.1 connections alive, so the
    clients' connection pools are reused instead of a TCP connection (and a server thread) per API call.
    """

    def announce(line: str) -> None:
        print(line, flush=True)
        if line.startswith("ready"):
            os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads our stdout from now on

    return _serve(host, port, os.environ.get(GUARD_VARIABLE) or None, os.environ.get(METER_VARIABLE) == "1",
                  announce, owner_gone=sys.stdin.buffer.read)


def _serve_forked(host: str, port: int, guard_json: str | None, meter_writes: bool, owner: Connection) -> None:
    """The endpoint process forked from multiprocessing's fork server (``LocalEndpoint._fork``): as ``serve``, but
    its ready line goes over ``owner`` (a pipe), and it stops when its owner closes that pipe (or goes away)."""
    from moto.moto_api._internal import mock_random

    # moto's ids (message ids, receipt handles, event ids) come from its own generator, seeded when the fork server
    # imported moto: without a new seed every forked endpoint would hand out the same ones.
    mock_random.seed()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # as a new interpreter's: nothing of ours goes to stdout
    sys.exit(_serve(host, port, guard_json, meter_writes, owner.send, owner_gone=owner.recv))


def _serve(host: str, port: int, guard_json: str | None, meter_writes: bool, announce: Callable[[str], None],
           owner_gone: Callable[[], object]) -> int:
    """Listen, ``announce("ready <port>")`` (or ``"error <why>"`` and 2), serve until ``owner_gone()`` returns or
    raises, or SIGTERM."""
    from waitress.server import create_server

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the owner stops us
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # queued requests are normal under load
    guard = SourceGuard.from_json(guard_json) if guard_json else None
    try:
        server = create_server(make_app(WireCounter(), guard, meter_writes=meter_writes),
                               host=host, port=port, threads=SERVER_THREADS,
                               connection_limit=CONNECTION_LIMIT, ident="agentbus-local")
    except (OSError, ValueError) as error:  # ValueError: waitress could not resolve the host
        announce(f"error cannot listen on {host}:{port}: {getattr(error, 'strerror', None) or error}")
        return 2

    def stop(*_: object) -> None:
        sys.stderr.flush()
        os._exit(0)  # nothing to save: the emulated state lives only as long as this process

    def stop_when_the_owner_goes() -> None:
        with contextlib.suppress(OSError, ValueError, EOFError):
            owner_gone()
        stop()

    threading.Thread(target=stop_when_the_owner_goes, name="owner-watch", daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=_import_slow_backends, name="backend-imports", daemon=True).start()
    announce(f"ready {port}")
    server.run()
    return 0


# moto backends whose first request would import for seconds (SSM imports all of EC2: ~2 s), imported while the
# owner is still setting up its clients; a request that needs one meanwhile waits for the import (Python's lock).
# The PutEvents entry size (put_events.request_size) comes from the publisher, whose import takes a second or two.
SLOW_BACKENDS = ("moto.ssm.models", "moto.events.models", "functions.common.publisher")


def _import_slow_backends() -> None:
    for module in SLOW_BACKENDS:
        with contextlib.suppress(Exception):  # only an optimization: the request would import it anyway
            importlib.import_module(module)


def wake_polls(endpoint_url: str, timeout_s: float = 2) -> None:
    """End the ReceiveMessage calls waiting now on the endpoint at ``endpoint_url`` (``WAKE_POLLS_PATH``)."""
    request = urllib.request.Request(endpoint_url.rstrip("/") + WAKE_POLLS_PATH, data=b"", method="POST")
    urllib.request.urlopen(request, timeout=timeout_s).close()


# An endpoint is a new interpreter (``python -m agentbus.local.server``) that imports moto and its backends: about
# 4 s of a core. A process that starts many (the test suite, a benchmark's runs) may fork them instead
# (``LocalEndpoint(fork=True)``) from multiprocessing's fork server, which imports these modules once.
FORK_SERVER_PRELOAD = ("agentbus.local.server", "moto.moto_server.werkzeug_app", "waitress.server",
                       "agentbus.local.moto_gaps", "agentbus.local.moto_speedups", "moto.sqs.models",
                       "moto.dynamodb.models", "moto.scheduler.models", "moto.s3.models", *SLOW_BACKENDS)


class LocalEndpoint:
    """moto's server on 127.0.0.1, in a process of its own, behind the serializing middleware.

    ``fork``: the process is forked from multiprocessing's fork server (``FORK_SERVER_PRELOAD``) rather than a new
    interpreter: it starts in a fraction of a second once the fork server runs. As with any use of that start
    method, the program's main module must not start endpoints when it is imported (``if __name__ ==
    "__main__":``): the fork server's children import it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, guard: SourceGuard | None = None,
                 meter_writes: bool = False, fork: bool = False) -> None:
        self.host = host
        self.fork = fork
        self.port = port or free_port(host)
        self.guard = guard
        self.meter_writes = meter_writes
        self._process: subprocess.Popen[bytes] | None = None
        self._forked: BaseProcess | None = None
        self._owner: Connection | None = None  # the forked endpoint stops when this closes

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalEndpoint:
        line = self._fork() if self.fork else self._spawn()
        if line is None or not line.startswith("ready"):
            self.stop()
            if line is None:
                raise RuntimeError(f"the local endpoint did not start within {START_TIMEOUT_S} s")
            raise RuntimeError(line.removeprefix("error ") or "the local endpoint exited while starting "
                               "(its error is above)")
        return self

    def _spawn(self) -> str | None:
        """A new interpreter running ``serve``; its first line (None if none came in time)."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO_ROOT),
                                                                           os.environ.get("PYTHONPATH")]))}
        env.pop(GUARD_VARIABLE, None)
        env[METER_VARIABLE] = "1" if self.meter_writes else "0"
        if self.guard:
            env[GUARD_VARIABLE] = self.guard.to_json()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "agentbus.local.server", "--host", self.host, "--port", str(self.port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        stdout = cast(IO[bytes], self._process.stdout)  # stdout=PIPE: never None
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(stdout.readline().decode()),
                                  daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        if first_line:
            stdout.close()  # the endpoint says nothing more there (it writes to the shared stderr)
        return first_line[0].strip() if first_line else None

    def _fork(self) -> str | None:
        """``_serve_forked`` forked from the fork server; its first message (None if none came in time)."""
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(FORK_SERVER_PRELOAD))  # read when the fork server starts
        self._owner, child_end = context.Pipe()
        self._forked = context.Process(
            target=_serve_forked, name=f"agentbus-endpoint-{self.port}", daemon=True,
            args=(self.host, self.port, self.guard.to_json() if self.guard else None, self.meter_writes, child_end))
        try:
            self._forked.start()
        except (EOFError, OSError) as error:  # the fork server itself did not start (its error is on stderr)
            self._forked = None
            child_end.close()
            return f"error the fork server could not fork the local endpoint: {error!r}"
        child_end.close()  # the endpoint's end is its own now: if it dies, our end reads EOF
        try:
            return str(self._owner.recv()) if self._owner.poll(START_TIMEOUT_S) else None
        except (EOFError, OSError):
            return ""  # it exited before it listened: its error is on the shared stderr

    def wire_calls(self) -> Counter[str]:
        """The API calls the endpoint has served so far, by ``service:Action``."""
        with urllib.request.urlopen(f"{self.url}{CALLS_PATH}", timeout=10) as response:
            return Counter(json.loads(response.read()))

    def write_units(self) -> Counter[str]:
        """The DynamoDB write units charged so far, by table name (``write_meter``); empty unless the endpoint
        was started with ``meter_writes``."""
        with urllib.request.urlopen(f"{self.url}{WRITE_UNITS_PATH}", timeout=10) as response:
            return Counter(json.loads(response.read()))

    @property
    def pid(self) -> int | None:
        if self._forked is not None:
            return self._forked.pid
        return self._process.pid if self._process else None

    @property
    def exit_code(self) -> int | None:
        """The endpoint process's exit code once it has exited; None while it runs (or before start)."""
        if self._forked is not None:
            return self._forked.exitcode
        return self._process.poll() if self._process else None

    def stop(self) -> None:
        forked, owner, self._forked, self._owner = self._forked, self._owner, None, None
        if owner is not None:
            owner.close()  # the endpoint stops when its owner's end closes
        if forked is not None:
            forked.join(10)
            if forked.exitcode is None:
                forked.kill()
                forked.join(5)
        process, self._process = self._process, None
        if not process:
            return
        with contextlib.suppress(OSError):
            cast(IO[bytes], process.stdin).close()  # stdin=PIPE; the endpoint stops when its standard input closes
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m agentbus.local.server",
                                     description="the local AWS endpoint process (started by LocalEndpoint)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
