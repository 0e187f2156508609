"""Option, context and parameter values the CLI and the synth refuse up front, naming the option, instead of
accepting a value nothing downstream can work with (black-box pass 3: G4, G5, G8); and the exit code of a verb
whose reader stops reading (G1)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from agentbus import cli
from functions.common.spec import MAX_SIMULATED_WORK_MS, MAX_WAIT_S, Manifest
from functions.manifest import MANIFEST
from functions.orders.fraud.logic import FraudPolicy, money
from functions.orders.workflow import amount
from infrastructure.stack import StackConfig


class FakeNode:
    def __init__(self, **context: object) -> None:
        self.context = context

    def try_get_context(self, name: str) -> object:
        return self.context.get(name)


def _refused(capsys, *argv: str) -> str:
    """argv is a usage error: exit 2 and one line on stderr."""
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(list(argv))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


# -- G4: deadlines and waits at most 366 days, simulated work at most Lambda's 15 minutes --------------------

def test_the_bound_is_366_days_and_15_minutes() -> None:
    assert MAX_WAIT_S == 31_622_400 == 366 * 86_400
    assert MAX_SIMULATED_WORK_MS == 900_000


@pytest.mark.parametrize("argv", [
    ["up", "--deadline"], ["up", "--approval-wait"], ["demo", "--deadline"],
])
def test_a_deadline_or_wait_beyond_366_days_is_a_usage_error_naming_the_option(capsys, argv) -> None:
    option = argv[-1]
    for value in (str(MAX_WAIT_S + 1), "99999999999999"):
        err = _refused(capsys, *argv, value)
        assert f"argument {option}: must be at most 31622400 (366 days), got {value}" in err
    assert getattr(cli.build_parser().parse_args([*argv, str(MAX_WAIT_S)]),
                   option.lstrip("-").replace("-", "_")) == MAX_WAIT_S
    assert "must be > 0" in _refused(capsys, *argv, "0")


@pytest.mark.parametrize("verb", ["up", "demo", "bench"])
def test_simulated_work_beyond_15_minutes_is_a_usage_error_naming_the_option(capsys, verb) -> None:
    err = _refused(capsys, verb, "--work", "fraud=300,shipping=99999999999999999999")
    assert "argument --work:" in err and "at most 900000 ms" in err and "shipping=99999999999999999999" in err
    assert "fraud=300" not in err
    assert cli.build_parser().parse_args([verb, "--work", "shipping=900000"]).work == {"shipping": 900_000}


@pytest.mark.parametrize("key", ["deadline_seconds", "approval_wait_seconds"])
def test_a_context_deadline_or_wait_beyond_366_days_fails_the_synth_naming_the_key(key) -> None:
    for value in (str(MAX_WAIT_S + 1), "99999999999999", MAX_WAIT_S + 1):
        with pytest.raises(ValueError, match=rf"^{key} must be at most 31622400 \(366 days\), got "):
            StackConfig.from_context(FakeNode(**{key: value}))
    assert getattr(StackConfig.from_context(FakeNode(**{key: str(MAX_WAIT_S)})), key) == MAX_WAIT_S


def test_the_manifest_bounds_its_own_deadlines_and_waits_the_same() -> None:
    access = MANIFEST.workflow("access-request")
    [external] = access.external
    for changed in (dataclasses.replace(access, deadline_s=MAX_WAIT_S + 1),
                    dataclasses.replace(access, external=(dataclasses.replace(external,
                                                                                     wait_s=MAX_WAIT_S + 1),))):
        workflows = tuple(changed if w.name == access.name else w for w in MANIFEST.workflows)
        with pytest.raises(ValueError, match="must be > 0 and at most 31622400"):
            Manifest(workflows=workflows, tables=MANIFEST.tables)
    ok = dataclasses.replace(access, deadline_s=MAX_WAIT_S,
                             external=(dataclasses.replace(external, wait_s=MAX_WAIT_S),))
    Manifest(workflows=tuple(ok if w.name == access.name else w for w in MANIFEST.workflows), tables=MANIFEST.tables)


# -- G8: a chaos rate of 1 fails every PutEvents, so nothing could ever end ---------------------------------

@pytest.mark.parametrize("verb", ["soak", "demo", "up"])
@pytest.mark.parametrize("rate", ["1", "1.0", "1.5", "-0.1", "nan"])
def test_a_chaos_rate_of_1_or_more_or_below_0_is_a_usage_error(capsys, verb, rate) -> None:
    err = _refused(capsys, verb, "--chaos", rate)
    assert f"argument --chaos: must be at least 0 and below 1, got {rate}" in err


@pytest.mark.parametrize("verb", ["soak", "demo", "up"])
def test_a_chaos_rate_below_1_is_accepted_and_the_help_says_below_1(capsys, verb) -> None:
    assert cli.build_parser().parse_args([verb, "--chaos", "0.99"]).chaos == 0.99
    assert cli.build_parser().parse_args([verb, "--chaos", "0"]).chaos == 0
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([verb, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "at least 0, below 1" in out and "(0-1)" not in out


# -- G5: the fraud limit is an amount an order can have, not any finite Decimal ----------------------------

TOO_LARGE = ["1e300000", "1e999999999", "1000000000000", "1e12"]
TOO_PRECISE = ["0.001", "1e-999999999", "10000.005"]


@pytest.mark.parametrize("value", TOO_LARGE + TOO_PRECISE)
def test_a_fraud_limit_no_order_amount_could_be_is_refused(value) -> None:
    with pytest.raises(ValueError, match=rf"got '{value}'$"):
        amount(value)


@pytest.mark.parametrize("value", ["10000.00", "0", "2500.50", "1.000", "1E+3", "999999999999.99"])
def test_an_order_amount_is_a_fraud_limit_and_prints_in_a_few_characters(value) -> None:
    limit = amount(value)
    assert limit <= Decimal("999999999999.99")
    assert len(money(FraudPolicy(limit=limit).limit)) <= 15


@pytest.mark.parametrize("value", ["1e300000", "0.001"])
def test_the_param_option_and_the_context_key_refuse_it_naming_the_parameter(capsys, value) -> None:
    err = _refused(capsys, "up", "--param", f"FRAUD_LIMIT={value}")
    assert "argument --param: FRAUD_LIMIT: must " in err and value in err
    with pytest.raises(ValueError, match=r"^fraud_limit: .*must "):
        StackConfig.from_context(FakeNode(fraud_limit=value))


# -- G1: a rich view whose reader stops reading exits 141, quietly, as every other output does --------------

# The CLI's status view (a rich table) against a fake deployment: no stack needed. `agentbus status ID | head -0`.
STATUS_WITHOUT_A_STACK = textwrap.dedent("""
    import sys
    from agentbus import cli, discovery
    from agentbus import operations as ops
    from agentbus.resources import Resources

    resources = Resources(bus_name="agentbus", bus_arn="arn:bus", archive_name="a", schedule_group="g",
                          scheduler_role_arn="arn:role", tables={}, consumers={}, local=True)
    deployment = discovery.Deployment(session=None, endpoint_url="http://127.0.0.1:9", resources=resources)
    discovery.find_deployment = lambda *_: deployment
    view = {"workflow_id": "ord-1", "workflow": "order-fulfillment", "status": "RUNNING", "reason": None,
            "results": {f"agent-{i}": {"detail_type": "Done", "outcome": "success", "duration_ms": 3,
                                       "reason": "x" * 100} for i in range(200)},
            "missing": [], "timings": {}, "trigger": {"order_id": "ord-1"}, "late_results": [], "outcome": {}}
    ops.workflow_status = lambda *_args, **_options: view
    sys.exit(cli.main(sys.argv[1:]))
""")


@pytest.mark.parametrize("argv", [["status", "ord-1"], ["status", "ord-1", "--json"]])
def test_a_rich_view_whose_reader_stops_reading_exits_141_quietly(argv) -> None:
    reader = subprocess.Popen([sys.executable, "-c", STATUS_WITHOUT_A_STACK, *argv],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # gone before the verb writes
    assert reader.wait(timeout=60) == 141
    assert reader.stderr.read() == b""
    reader.stderr.close()


def test_the_view_prints_its_table_when_someone_reads_it() -> None:
    result = subprocess.run([sys.executable, "-c", STATUS_WITHOUT_A_STACK, "status", "ord-1"], capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    assert "agent-199" in result.stdout and "workflow ord-1" in result.stdout


@pytest.mark.parametrize("variable", ["DEADLINE_SECONDS", "EXTERNAL_WAIT_SECONDS"])
def test_the_coordinators_environment_holds_waits_to_the_same_bound(variable):
    # The CLI and the context keys are bounded; the function's own environment (set by hand on a deployed function)
    # is read with the same bound at cold start, not dead-lettering every record with OverflowError.
    from functions.common.settings import Settings, SettingsError, function_environment

    coordinator = MANIFEST.consumer("coordinator")
    env = function_environment(coordinator, MANIFEST, bus_name="agentbus", bus_arn="arn:bus",
                               tables={name: name for name in coordinator.tables},
                               dead_letter_queue_url="https://dlq", schedule_group="g", scheduler_role_arn="arn:role")
    assert Settings.from_env({**env, variable: str(MAX_WAIT_S)})
    with pytest.raises(SettingsError, match=f"{variable} must be <= {MAX_WAIT_S}, got '99999999999999'"):
        Settings.from_env({**env, variable: "99999999999999"})
