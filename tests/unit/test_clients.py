"""The functions' AWS clients give up on a stalled call in time to report the record's failure within the
invocation (botocore's defaults, 60 s to connect and 60 s per read, outlasted a 30 s function), while the local
runtime's clients wait out a busy emulator and its 20 s long polls."""

from __future__ import annotations

import socket
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from agentbus.local.runtime import RuntimeOptions
from functions.common import clients
from functions.common.spec import Consumer


def test_one_call_at_its_longest_fits_well_inside_the_default_function_timeout() -> None:
    config = clients.CLIENT_CONFIG
    assert (config.connect_timeout, config.read_timeout) == (clients.CONNECT_TIMEOUT_S, clients.READ_TIMEOUT_S)
    assert config.retries["total_max_attempts"] == clients.CALL_ATTEMPTS
    timeout_s = Consumer(name="any", handler="functions.x.handler.handler", source="x").timeout_s
    assert timeout_s * 0.85 >= clients.CALL_BOUND_S, (clients.CALL_BOUND_S, timeout_s)


def test_the_local_runtime_waits_longer_than_its_longest_poll() -> None:
    local = clients.LOCAL_CLIENT_CONFIG
    assert local.read_timeout > RuntimeOptions().poll_wait_s
    assert local.max_pool_connections == clients.MAX_POOL_CONNECTIONS


@pytest.fixture
def silent_endpoint():
    """An endpoint that accepts connections and never answers (a stalled service)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_stalled_call_ends_after_its_attempts_not_after_a_minute(silent_endpoint: str) -> None:
    # The functions' config with its read timeout scaled down, so the test takes a second: the attempts and the
    # timeout are the config's own.
    config = clients.CLIENT_CONFIG.merge(Config(read_timeout=0.3))
    dynamodb = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1").client(
        "dynamodb", endpoint_url=silent_endpoint, config=config)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        dynamodb.get_item(TableName="t", Key={"k": {"S": "v"}})
    elapsed = time.monotonic() - started
    assert clients.CALL_ATTEMPTS * 0.3 <= elapsed < clients.CALL_ATTEMPTS * 0.3 + 4, elapsed
