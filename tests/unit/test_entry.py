"""The shared Lambda entry point (black-box pass 10D, findings 6 and 15)."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from functions.common import entry


@pytest.fixture
def wiring(monkeypatch):
    built: list[str] = []
    monkeypatch.setattr(entry, "settings", lambda: "settings")
    monkeypatch.setattr(entry, "default_clients", lambda: "clients")

    def build(settings, clients):
        built.append(f"{settings}+{clients}")
        if len(built) == 1 and getattr(build, "fail_first", False):
            raise RuntimeError("no table")
        return lambda event, context: {"batchItemFailures": [], "event": event}

    return build, built


def _context():
    return SimpleNamespace(function_name="f", memory_limit_in_mb=256, invoked_function_arn="arn", aws_request_id="r")


def test_on_lambda_the_function_is_wired_in_the_init_phase_once(monkeypatch, wiring) -> None:
    build, built = wiring
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "agentbus-fraud")
    handler = entry.lambda_handler(build)
    assert built == ["settings+clients"], "wired at import, before the first request"
    handler({"Records": []}, _context())
    handler({"Records": []}, _context())
    assert built == ["settings+clients"]


def test_a_wiring_failure_in_the_init_phase_is_logged_and_the_first_invocation_tries_again(monkeypatch, wiring,
                                                                                         caplog) -> None:
    build, built = wiring
    build.fail_first = True
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "agentbus-fraud")
    handler = entry.lambda_handler(build)  # does not raise: a failed init would fail every cold start unexplained
    assert handler({"Records": []}, _context())["event"] == {"Records": []}
    assert len(built) == 2


def test_elsewhere_it_is_wired_on_first_use_after_the_environment_is_set(monkeypatch, wiring) -> None:
    build, built = wiring
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    handler = entry.lambda_handler(build)
    assert built == []
    handler({"Records": []}, _context())
    assert built == ["settings+clients"]


def test_keys_appended_during_one_invocation_do_not_leak_into_the_next(monkeypatch, wiring) -> None:
    build, _ = wiring
    lines = io.StringIO()
    monkeypatch.setattr(entry.logger.registered_handler, "stream", lines)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)

    def leaky(settings, clients):
        def handle(event, context):
            if event.get("append"):
                entry.logger.append_keys(leaked="yes")
            entry.logger.warning("handled")
            return {"batchItemFailures": []}
        return handle

    handler = entry.lambda_handler(leaky)
    handler({"Records": [], "append": True}, _context())
    handler({"Records": []}, _context())
    first, second = (json.loads(line) for line in lines.getvalue().splitlines())
    assert first["leaked"] == "yes" and first["message"] == second["message"] == "handled"
    assert "leaked" not in second
