"""`agentbus`: run the whole thing locally, and operate a deployment (local endpoint or AWS).

Every verb that talks to a deployment takes --endpoint-url and honours AWS_ENDPOINT_URL; with neither it
finds the deployed stack on AWS from its CloudFormation outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib.util
import json
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

from agentbus.reasoners import model_usage
from agentbus.terminal import shown, terminal_safe
from functions.common.settings import parse_work_profile
from functions.common.spec import MAX_SIMULATED_WORK_MS, MAX_WAIT_S

if TYPE_CHECKING:
    from agentbus.discovery import Deployment
    from agentbus.operations import DeadLetter

# Data is never markup or emoji codes (an order id "ord-[/bold]" or ":x:" prints as it is), and never acts on the
# terminal: every piece of data a human-readable output prints goes through agentbus.terminal first (an ESC or a
# bidi override in a reason is printed as \x1b or \u202e).
# Wide enough for the demo's summary table when the output is a file or a CI log, not a terminal.
def _reader_gone(stream: Any) -> int:
    """The reader of ``stream`` stopped reading (`agentbus dead-letters --json | head`): nothing more to flush
    there at exit, no error line; the exit code of a process that SIGPIPE ended (128 + 13), as other tools give."""
    with contextlib.suppress(OSError, ValueError):  # not a file descriptor (captured): nothing to flush there
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    return 141


class _Console(Console):
    """Rich catches the BrokenPipeError of a gone reader itself and exits 1 (the code of a refusal) before main
    sees it: `agentbus status ID | head -1` exits as main says instead, quietly with 141."""

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more to write
        raise SystemExit(_reader_gone(self.file))


console = _Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 160)
errors = _Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)  # an error stays one line, however long


# Locally nobody waits a day for a manager: every external agent's wait is this unless --approval-wait says.
LOCAL_APPROVAL_WAIT_S = 900


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _rate(text: str) -> float:
    """``--chaos RATE``: below 1, for at 1 every PutEvents fails, no outcome is ever published and nothing ends."""
    value = _number(text)
    if not 0 <= value < 1:  # NaN too
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    if value > MAX_WAIT_S:  # inf and 1e308 seconds overflowed the demo's pacing (black-box pass 20E, F2)
        raise argparse.ArgumentTypeError(f"must be at most {MAX_WAIT_S} (366 days), got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


# A local run's sizes (black-box pass 20E, F4: a soak of 10^9 requests built them all in memory before printing a
# line; a level of 10^8 started): far beyond what one machine's local stack gets through.
MAX_LEVEL = 10_000
MAX_SOAK_REQUESTS = 100_000


def _at_most(limit: int) -> Callable[[str], int]:
    """A whole number above 0 and at most ``limit``."""

    def parse(text: str) -> int:
        value = _positive_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit:,} on a local stack, got {value:,}")
        return value

    return parse


def _levels(text: str) -> list[int]:
    """``--levels 1,10,100``: each level once (a level run twice reuses its request ids, which have their outcomes
    already: its figures were nonsense and the run died at the end)."""
    levels = [_at_most(MAX_LEVEL)(part) for part in text.split(",")]
    repeated = sorted({level for level in levels if levels.count(level) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"each level once: {', '.join(map(str, repeated))} given twice")
    return levels


def _seconds(text: str) -> int:
    """``--deadline`` / ``--approval-wait``: whole seconds, at most 366 days (the manifest's own bound); far more
    overflows the coordinator's deadline arithmetic and every trigger would be dead-lettered."""
    value = _positive_int(text)
    if value > MAX_WAIT_S:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_WAIT_S} (366 days), got {value}")
    return value


def _wait_seconds(text: str) -> float:
    """``status --wait SECONDS``: more than 0, at most 366 days (the longest a workflow may stay open)."""
    value = _number(text)
    if not 0 < value <= MAX_WAIT_S:  # NaN and inf too
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_WAIT_S} (366 days), got {text}")
    return value


def _seconds_text(seconds: float) -> str:
    """``--wait``'s seconds as given, without an exponent: 1,000,000, 2.5, 0.001."""
    return f"{seconds:,.0f}" if seconds == int(seconds) else f"{seconds:,.6f}".rstrip("0").rstrip(".")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentbus")
    except PackageNotFoundError:  # run from a checkout that was not installed
        return "(not installed)"


def _profile(text: str) -> dict[str, int]:
    """``--work NAME=MS,…``: simulated work per agent of the manifest (an unknown name is a typo, not ignored)."""
    from functions.manifest import MANIFEST

    try:
        profile = parse_work_profile(text) or {}
    except ValueError:
        raise argparse.ArgumentTypeError(f"a work profile looks like NAME=MS,NAME=MS (e.g. checker=300), got {text!r}"
                                         ) from None
    known = [agent.name for agent in MANIFEST.agents]
    unknown = [name for name in profile if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown agent {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    too_long = [f"{name}={ms}" for name, ms in profile.items() if ms > MAX_SIMULATED_WORK_MS]
    if too_long:  # a Lambda runs at most 15 minutes; far more overflows the simulated work's sleep
        raise argparse.ArgumentTypeError(f"an agent's work is at most {MAX_SIMULATED_WORK_MS} ms (Lambda's 15 "
                                         f"minutes), got {', '.join(too_long)}")
    return profile


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r} (e.g. 2026-11-26T10:00:00Z)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 1 and 65535 (0: any free port), got {value}")
    return value


def _parameter(text: str) -> tuple[str, str]:
    """``NAME=VALUE``, NAME a parameter some function of the manifest declares, VALUE valid for it."""
    from functions.manifest import MANIFEST

    name, sep, value = text.partition("=")
    declared = {p.env: p for c in MANIFEST.consumers for p in c.parameters}
    if not sep or name not in declared:
        known = ", ".join(sorted(declared)) or "none"
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME a manifest parameter ({known}), got {text!r}")
    try:
        declared[name].validate(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return name, value


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default where it has one and its help does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_ = action.help or ""
        if (not action.option_strings or "default" in help_
                or action.default in (None, False, argparse.SUPPRESS)):
            return help_
        return f"{help_} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line too, naming the verb and pointing at its help."""

    # What this parser was given (a verb's: the words after the verb), for the hint about an ID starting with "-".
    _given: list[str] = []

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """A verb's unrecognized arguments are named with the verb (argparse's top-level parser named none: black-box
        pass 10B, F7)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            verbs = next((a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
            verb = (verbs or {}).get(str(getattr(parsed, "verb", "")))
            (verb if isinstance(verb, argparse.ArgumentParser) else self).error(
                f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}{self._dash_id_hint(message)} (see `{self.prog} --help`)\n")

    def _dash_id_hint(self, message: str) -> str:
        """An id may start with "-" (``-p1``), but argparse takes it for an option and says the ID is missing
        (black-box pass 10A, F3): then say that it goes after ``--``."""
        required = message.partition("the following arguments are required: ")[2]
        if "ID" not in required.split(", "):
            return ""
        for index, token in enumerate(self._given):
            if token == "--":
                return ""
            name = token.partition("=")[0]
            if token.startswith("-") and not any(option == name or (name.startswith("--") and
                                                                    option.startswith(name))
                                                 for option in self._option_string_actions):
                rest = self._given[:index] + self._given[index + 1:]
                return (f"; an ID that starts with '-' goes after `--`: "
                        f"{shlex.join([*self.prog.split(), *rest, '--', token])}")
        return ""


WORKFLOW_ID_HELP = "the workflow id (its trigger's value of the workflow's id field)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="agentbus", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"agentbus {_version()}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def deployed(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=_HelpFormatter)
        p.add_argument("--endpoint-url", help="local endpoint (default: $AWS_ENDPOINT_URL, else AWS)")
        p.add_argument("--stack", help="CloudFormation stack name on AWS (default: $AGENTBUS_STACK or AgentbusStack)")
        return p

    def local(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_,
                              formatter_class=_HelpFormatter)

    demo = local("demo", "self-contained local run of the main job: starts a local endpoint, puts the workflows' "
                         "samples, shows each agent's result and each outcome, checks the invariants, stops")
    demo.add_argument("--chaos", type=_rate, default=0.0, metavar="RATE",
                      help="inject duplicates, crashes, delays and PutEvents failures at this rate (at least 0, "
                           "below 1)")
    demo.add_argument("--deadline", type=_seconds, default=30, metavar="SECONDS",
                      help="every workflow's deadline (at most 366 days)")
    demo.add_argument("--work", type=_profile, default=None, metavar="PROFILE",
                      help="simulated agent work per agent, e.g. checker=300,reviewer=250 (default: each agent's "
                           "simulated_work_ms in the manifest; an empty string for none)")
    demo.add_argument("--workflow", action="append", metavar="NAME",
                      help="run only this workflow's samples (repeatable; default: every workflow of the manifest)")
    demo.add_argument("--events", dest="event_files", action="append", metavar="FILE",
                      help="PutEvents entries file(s) to put instead of the workflows' samples")
    # The old name, from when the demo knew only one workflow: still taken, no longer shown.
    demo.add_argument("--orders", dest="event_files", action="append", help=argparse.SUPPRESS)
    demo.add_argument("--timeline", default="out/demo-timeline.html", metavar="PATH",
                      help="where to write the timeline page")
    demo.add_argument("--seed", type=int, help="random seed for --chaos (default: a different run each time)")
    demo.add_argument("--interval", type=_non_negative, default=0.5, metavar="SECONDS",
                      help="time between two requests (0 puts them all at once)")

    up = local("up", "local AWS endpoint with the whole topology provisioned and the agents running, in the "
                     "foreground until Ctrl-C / SIGTERM")
    up.add_argument("--port", type=_port, default=4566, help="port to listen on (0: any free port)")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on")
    up.add_argument("--deadline", type=_seconds, metavar="SECONDS",
                    help="override every workflow's deadline (default: the manifest's; at most 366 days)")
    up.add_argument("--approval-wait", type=_seconds, default=LOCAL_APPROVAL_WAIT_S, metavar="SECONDS",
                    help="how long a workflow waits for a person, from when it was asked (every external "
                         "agent's wait; on AWS each agent's wait_s of the manifest, e.g. 24 h; at most 366 days); "
                         "it only moves the deadline out: a workflow never times out before its own deadline")
    up.add_argument("--chaos", type=_rate, default=0.0, metavar="RATE",
                    help="inject faults at this rate (at least 0, below 1)")
    up.add_argument("--work", type=_profile, default=None, metavar="PROFILE",
                    help="simulated agent work, e.g. checker=300,reviewer=100 (default: none)")
    up.add_argument("--param", action="append", type=_parameter, default=[], metavar="NAME=VALUE",
                    help="a parameter some function of the manifest declares, as NAME=VALUE (repeatable; "
                         "default: each parameter's default in the manifest)")
    up.add_argument("--log-level", default=None, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                    help="the functions' log level (JSON lines on stdout; default WARNING)")

    status = deployed("status", "a workflow's status, results and what is missing")
    status.add_argument("workflow_id", metavar="ID", help=WORKFLOW_ID_HELP)
    status.add_argument("--workflow", metavar="NAME", help="which workflow, when two workflows use the id")
    status.add_argument("--json", action="store_true", help="print the whole record as JSON")
    status.add_argument("--wait", type=_wait_seconds, metavar="SECONDS",
                        help="wait up to SECONDS for the workflow's outcome (an id with no record yet is looked for "
                             "again), then show it; exit code 3 if it is still running (or not found) by then")

    trace = deployed("trace", "the timeline of one workflow, agent by agent")
    trace.add_argument("workflow_id", metavar="ID", help=WORKFLOW_ID_HELP)
    trace.add_argument("--workflow", metavar="NAME", help="which workflow, when two workflows use the id")

    for verb, what in (("approve", "approve"), ("decline", "decline")):
        answer = deployed(verb, f"{what} what a running workflow waits for a person to {what} (the external "
                                "agent's result, e.g. a manager's approval); refused if it is finished")
        answer.add_argument("workflow_id", metavar="ID", help=WORKFLOW_ID_HELP)
        answer.add_argument("--workflow", metavar="NAME", help="which workflow, when two workflows use the id")
        answer.add_argument("--agent", metavar="NAME",
                            help="which external agent answers, when the workflow has several (default: its only "
                                 "one, or the only one it waits for)")
        answer.add_argument("--by", metavar="NAME",
                            help="who answers, as the record keeps it (default: your AWS identity on AWS, your "
                                 "user name locally)")
        answer.add_argument("--note", metavar="TEXT", help="why, kept with the answer (at most 2048 characters)")

    cancel = deployed("cancel", "cancel a running workflow: it finishes CANCELLED and its compensations run; "
                                "a finished workflow is left as it is (exit code 1)")
    cancel.add_argument("workflow_id", metavar="ID", help=WORKFLOW_ID_HELP)
    cancel.add_argument("--workflow", metavar="NAME", help="which workflow, when two workflows use the id")
    cancel.add_argument("--reason", metavar="TEXT", help="why, kept with the outcome (at most 2048 characters)")
    cancel.add_argument("--by", metavar="NAME",
                        help="who cancels (default: your AWS identity on AWS, your user name locally)")

    pending = deployed("pending", "running workflows waiting for a person (or another system): who, asked how "
                                  "long ago, waits until when")
    pending.add_argument("--workflow", metavar="NAME", help="only this workflow's")
    pending.add_argument("--json", action="store_true", help="print them as JSON")

    agent = deployed("agent", "pause an agent (its events wait in its queue) and resume it, or list the agents")
    agent.add_argument("action", choices=["pause", "resume", "list"],
                       help="pause: its events wait in its queue; resume: it processes them again; list: every "
                            "agent's state and queue depths")
    agent.add_argument("name", nargs="?", metavar="NAME",
                       help="the agent (for pause and resume; for list, only that agent)")

    dead = deployed("dead-letters", "every dead-lettered message with agent, reason and original event")
    dead.add_argument("--json", action="store_true", help="print them as JSON")
    dead.add_argument("--agent", metavar="NAME", help="only this agent's")

    redrive = deployed("redrive", "move an agent's dead letters back to its queue for another try")
    redrive.add_argument("name", metavar="NAME", help="the agent whose dead letters go back")

    put = deployed("put", "same as `aws events put-events --entries file://FILE`")
    put.add_argument("file", metavar="FILE", help="a JSON list of PutEvents entries (file:// prefix optional)")

    seed = deployed("seed", "put the manifest's seed data into its tables (new items only; live data is kept)")
    seed.add_argument("--table", metavar="NAME", help="only this table (default: every table with a seed file)")
    seed.add_argument("--file", metavar="PATH", help="another seed file for --table")

    replay = deployed("replay", "replay archived events between two times onto the bus")
    replay.add_argument("--from", dest="start", type=_time, required=True, metavar="TIME",
                        help="replay events whose time is at or after this ISO-8601 time (UTC unless it says)")
    replay.add_argument("--to", dest="end", type=_time, required=True, metavar="TIME",
                        help="... and before this one")

    local("catalogue", "print the event catalogue (Markdown) derived from the manifest")

    bench = local("bench", "benchmark on the local runtime: parallel vs chained, cost per million, "
                           "for every coordinated workflow")
    bench.add_argument("--workflow", action="append", metavar="NAME",
                       help="benchmark only this coordinated workflow (repeatable; default: every coordinated "
                            "workflow of the manifest; the first one's figures are also results.json's top level)")
    bench.add_argument("--quick", action="store_true",
                       help="a smaller run: levels 1,10,50 and sweep points of 10 requests (a few minutes)")
    bench.add_argument("--levels", type=_levels, metavar="N,N,…",
                       help=f"concurrency levels (default 1,10,100,1000; quick: 1,10,50; each at most {MAX_LEVEL:,})")
    bench.add_argument("--work", type=_profile, default=None, metavar="PROFILE",
                       help="simulated agent work by agent name, e.g. checker=300,reviewer=100 (default: each "
                            "agent's simulated_work_ms in the manifest; agents not named do none)")
    bench.add_argument("--output", default="bench/results.json", metavar="PATH", help="where to write the results")
    bench.add_argument("--chart", default="bench/chart.html", metavar="PATH", help="where to write the chart page")
    bench.add_argument("--agents", metavar="N,N,…",
                       help="after the levels, sweep a synthetic workflow of N agents (1-99 each, e.g. 3,10,30) "
                            "at each --payload (with --payload alone: 3 agents)")
    bench.add_argument("--payload", metavar="BYTES,…",
                       help="the sweep's result size per agent: bytes or KB/MB, e.g. 1KB,100KB,1MB (with --agents "
                            "alone: 1KB)")
    bench.add_argument("--sweep-requests", type=_at_most(MAX_LEVEL), metavar="N",
                       help="requests put at once per sweep point (default 20; quick: 10)")
    bench.add_argument("--sweep-only", action="store_true",
                       help="run only the sweep and update only its keys of the results file")
    bench.add_argument("--model", metavar="MODEL_ID",
                       help="the Bedrock model (priced in bench/pricing.json) that reasoning agents' calls are "
                            "charged at (default: the first priced)")

    soak = local("soak", "mixed traffic of every workflow under chaos on the local runtime, with conflicting "
                         "versions and unstorable values; checks every invariant")
    soak.add_argument("--requests", dest="requests", type=_at_most(MAX_SOAK_REQUESTS), default=1000, metavar="N",
                      help=f"how many requests to put (at most {MAX_SOAK_REQUESTS:,}), the manifest's workflows in "
                           "turn (default: 1000)")
    soak.add_argument("--orders", dest="requests", type=_at_most(MAX_SOAK_REQUESTS), default=argparse.SUPPRESS,
                      help=argparse.SUPPRESS)  # the old name, as demo's --orders
    soak.add_argument("--chaos", type=_rate, default=0.2, metavar="RATE",
                      help="inject faults at this rate (at least 0, below 1)")
    soak.add_argument("--seed", type=int, help="random seed for --chaos (default: a different run each time)")
    soak.add_argument("--in-flight", type=_positive_int, metavar="N",
                      help="at most N coordinated requests waiting for their outcome at a time; the rest are put "
                           "as outcomes come in (default: 50)")
    return parser


# The verbs that run the local stack in their own process.
LOCAL_VERBS = frozenset({"up", "demo", "bench", "soak"})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = getattr(args, "log_level", None) or "WARNING"
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # The functions log with Powertools (JSON lines); locally only what matters, unless asked for more.
    # Under chaos every injected fault would log its warning (retries, crashes): keep the progress readable.
    injecting = getattr(args, "chaos", 0) and not getattr(args, "log_level", None)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR" if injecting else level)
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "agentbus")
    from agentbus.discovery import resolve_endpoint, without_aws_config
    from agentbus.resources import LOCAL_REGION

    isolated: contextlib.AbstractContextManager[None]
    if args.verb in LOCAL_VERBS:
        isolated = without_aws_config(LOCAL_REGION)
    elif resolve_endpoint(getattr(args, "endpoint_url", None)):
        isolated = without_aws_config()
    else:
        isolated = contextlib.nullcontext()
    with isolated:
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # print() (catalogue, --json) to a reader that stopped reading; rich's: _Console
        return _reader_gone(sys.stdout)
    except Exception as error:  # one clear line, no traceback
        try:
            from agentbus.approvals import Refused
            from agentbus.discovery import DeploymentNotFound
            from agentbus.operations import OperationError
        except Exception:  # noqa: BLE001 - they import the manifest: a manifest that raised (its check) raises again
            errors.print(f"agentbus {_verb_name(args)}: {_one_line(error)}", markup=False)
            return 2

        if isinstance(error, Refused):  # it would change nothing: the verb says why
            errors.print(f"agentbus {_verb_name(args)}: {_one_line(error)}", markup=False)
            return 1
        if isinstance(error, DeploymentNotFound | OperationError):
            errors.print(f"agentbus {_verb_name(args)}: {_one_line(error)}", markup=False)
            return 2
        from urllib.parse import urlsplit

        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        if isinstance(error, EndpointConnectionError):
            # The endpoint went away after the deployment was found (`status --wait` on a stopped `agentbus up`,
            # 21A F2): the line discovery gives for an endpoint nobody answers on, not botocore's.
            called = urlsplit(str(error.kwargs.get("endpoint_url") or ""))  # the request's URL: its endpoint only
            url = f"{called.scheme}://{called.netloc}"
            local = "" if "amazonaws.com" in url else ": is `agentbus up` (or the emulator) running there?"
            errors.print(f"agentbus {_verb_name(args)}: cannot reach {url}{local}", markup=False)
            return 2
        if isinstance(error, ClientError | BotoCoreError):
            errors.print(f"agentbus {_verb_name(args)}: {_one_line(error)}", markup=False)
            return 2
        from agentbus.control import ControlError
        from agentbus.local.runtime import FunctionStartError

        if isinstance(error, ControlError | FunctionStartError):
            errors.print(f"agentbus {_verb_name(args)}: {_one_line(error)}", markup=False)
            return 2
        import botocore.session

        from agentbus.discovery import unloadable_credentials

        # Credentials that expire are loaded again before a call: a credential_process may fail only then. The
        # profile named is the one botocore picked (from AWS_DEFAULT_PROFILE, AWS_PROFILE or "default").
        unloadable = unloadable_credentials(error, botocore.session.Session().profile or "default")
        if unloadable is not None:
            errors.print(f"agentbus {_verb_name(args)}: {_one_line(unloadable)}", markup=False)
            return 2
        if isinstance(error, KeyError):
            # A name looked up where it is not (the manifest's lookups say which and what is known: "unknown agent
            # 'x'; known: …"); a bare key (KeyError('Attributes')) is named as what it is.
            [what] = error.args if len(error.args) == 1 else [str(error)]
            text = what if isinstance(what, str) and " " in what.strip() else f"unexpected KeyError: {what!r}"
            errors.print(f"agentbus {_verb_name(args)}: {_one_line(Exception(text))}", markup=False)
            return 2
        raise


def _verb_name(args: argparse.Namespace) -> str:
    """``agent list``, ``status``: the verb as typed, its action included."""
    action = getattr(args, "action", None)
    return f"{args.verb} {action}" if args.verb == "agent" and action else str(args.verb)


def _one_line(error: BaseException) -> str:
    """The error's message on one line: botocore's parameter validation lists each problem on a line of its own
    ("Parameter validation failed:\nUnknown parameter in Entries[0]: ..."). An error may quote data (a refusal
    names the workflow's reason): what a terminal would act on is shown as its escape."""
    return shown(" ".join(line.strip() for line in str(error).splitlines() if line.strip()))


def _dispatch(args: argparse.Namespace) -> int:
    if args.verb == "demo":
        from agentbus.demo import run_demo

        return run_demo(chaos_rate=args.chaos, deadline_s=args.deadline, work_profile=args.work,
                        event_files=args.event_files, workflows=args.workflow, timeline_path=args.timeline,
                        seed=args.seed, interval_s=args.interval, console=console)
    if args.verb == "up":
        return _up(args)
    if args.verb == "bench":
        from agentbus.bench import run_bench, sweep

        try:  # parsed here, not by argparse: importing the bench before main() sets the log level would log all
            agents = sweep.parse_agents(args.agents) if args.agents is not None else None
            payloads = sweep.parse_sizes(args.payload) if args.payload is not None else None
        except ValueError as error:
            errors.print(f"agentbus bench: {error}", markup=False)
            return 2
        if Path(args.chart).suffix.lower() == ".png" and importlib.util.find_spec("matplotlib") is None:
            errors.print(f"agentbus bench: --chart {args.chart}: a PNG chart needs matplotlib, which is not "
                         "installed (pip install matplotlib); a .html chart needs nothing", markup=False)
            return 2
        return run_bench(quick=args.quick, levels=args.levels, work_profile=args.work, output=args.output,
                         chart=args.chart, console=console, workflows=args.workflow, agents=agents,
                         payloads=payloads, sweep_requests=args.sweep_requests, sweep_only=args.sweep_only,
                         model_id=args.model)
    if args.verb == "soak":
        from agentbus.bench import run_soak

        return run_soak(count=args.requests, chaos_rate=args.chaos, seed=args.seed, console=console,
                        **({"in_flight": args.in_flight} if args.in_flight else {}))
    if args.verb == "catalogue":
        from agentbus.catalogue import render

        print(render())
        return 0

    from agentbus import operations as ops
    from agentbus.discovery import find_deployment

    deployment = find_deployment(args.endpoint_url, args.stack)
    if args.verb == "status":
        if args.wait is None:
            view, ended = ops.workflow_status(deployment, args.workflow_id, args.workflow), True
        else:
            waited = _wait_for_outcome(deployment, args)
            if waited.view is None:
                errors.print(f"agentbus status: {_one_line(waited.error)} (after waiting {_seconds_text(args.wait)} s)",
                             markup=False)
                return 3
            view, ended = waited.view, waited.ended
        if args.json:
            print(ops.as_json(view))
        else:
            _print_status(terminal_safe(view))
        if not ended:
            errors.print(f"agentbus status: {shown(args.workflow_id)} is still {shown(str(view.get('status')))} "
                         f"after {_seconds_text(args.wait)} s", markup=False)
            return 3
        return 0
    if args.verb == "trace":
        # The trace names a claim-checked result's object; it does not fetch it.
        print(ops.render_trace(terminal_safe(ops.workflow_status(deployment, args.workflow_id, args.workflow,
                                                                 resolve_claim_checks=False))))
        return 0
    if args.verb == "agent":
        return _agent(deployment, args)
    if args.verb in ("approve", "decline", "cancel", "pending"):
        return _people(deployment, args)
    if args.verb == "dead-letters":
        letters = ops.dead_letters(deployment, args.agent)
        if args.json:
            print(ops.as_json(letters))
        elif not letters:
            console.print("no dead letters")
        else:
            for letter in letters:
                event = letter.event
                if letter.unreadable:
                    summary = f"unreadable body ({letter.body_bytes:,} bytes): {letter.unreadable}"
                elif isinstance(event, dict) and "detail-type" in event:
                    summary = f"{event.get('detail-type')} {ops.event_workflow_id(event) or ''}"
                elif isinstance(event, dict):  # JSON, but no event (sent to the queue by hand): 21A F6, "None"
                    summary = f"not an event: {json.dumps(event, ensure_ascii=False)[:80]}"
                else:
                    summary = str(event)[:80]
                console.print(f"[bold]{escape(shown(str(letter.agent)))}[/bold] {escape(shown(str(letter.message_id)))}"
                              f"  {escape(shown(summary))}\n  reason: {escape(shown(str(letter.reason)))}")
                if letter.sent_at:
                    console.print(f"  {dead_letter_lifetime(letter)}", markup=False)
            console.print(f"{len(letters)} dead letter(s); `agentbus redrive NAME` puts an agent's back on its queue")
        _say_hidden(ops.hidden_dead_letters(deployment, args.agent))  # on stderr: --json's output stays JSON
        return 0
    if args.verb == "redrive":
        moved = ops.redrive(deployment, args.name, progress=lambda n: errors.print(f"  moved {n}…"))
        console.print(f"redrove {moved} message(s) from {shown(args.name)}'s dead-letter queue to its queue",
                      markup=False)
        _say_hidden(ops.hidden_dead_letters(deployment, args.name))
        return 0
    if args.verb == "put":
        response = ops.put(deployment, args.file)
        print(ops.as_json(response))
        return 1 if response["FailedEntryCount"] else 0
    if args.verb == "seed":
        for table, written, total in ops.seed(deployment, args.table, args.file):
            console.print(f"seeded {written} new item(s) of {total} into {table} (items already there are kept)",
                          markup=False)
        return 0
    if args.verb == "replay":
        print(ops.as_json(ops.replay(deployment, args.start, args.end)))
        return 0
    raise AssertionError(args.verb)


def _wait_for_outcome(deployment: Any, args: argparse.Namespace) -> Any:
    """``status --wait``: ``operations.wait_for_outcome``, with a progress line on a terminal's stderr."""
    from agentbus import operations as ops

    if not sys.stderr.isatty():  # not rich's is_terminal, which FORCE_COLOR makes true: no spinner in CI logs
        return ops.wait_for_outcome(deployment, args.workflow_id, args.workflow, args.wait)
    with errors.status(f"waiting for {escape(shown(args.workflow_id))}…") as progress:

        def on_view(last: ops.Waited, elapsed_s: float) -> None:
            if last.view is None:
                state = "no record yet"
            else:
                missing = ", ".join(shown(str(name)) for name in last.view.get("missing") or [])
                state = shown(str(last.view.get("status"))) + (f", missing {missing}" if missing else "")
            progress.update(escape(f"waiting for {shown(args.workflow_id)}: {state} ({elapsed_s:.0f} s of "
                                   f"{_seconds_text(args.wait)})"))

        return ops.wait_for_outcome(deployment, args.workflow_id, args.workflow, args.wait, on_view=on_view)


def dead_letter_lifetime(letter: DeadLetter) -> str:
    """"sent … (3 d 4 h ago); SQS deletes it at … (in 10 d 19 h)": a letter moved by its queue's redrive policy
    kept the time it entered the agent's queue, so its dead-letter queue's retention is not all ahead of it."""
    from agentbus import approvals

    line = f"sent {shown(str(letter.sent_at))} ({approvals.ago(letter.age_s)} ago)"
    if letter.expires_at is None or letter.retention_s is None or letter.age_s is None:
        return line + "; when SQS deletes it is unknown (the dead-letter queue's retention cannot be read)"
    return (line + f"; SQS deletes it at {shown(letter.expires_at)} "
            f"(in {approvals.ago(letter.retention_s - letter.age_s)})")


def _print_status(view: dict[str, Any]) -> None:
    """The human view of one workflow. Every piece of data is escaped: an id or a reason is never markup."""
    style = {"COMPLETED": "green", "REJECTED": "yellow", "TIMED_OUT": "red",
             "CANCELLED": "magenta"}.get(str(view.get("status")), "cyan")
    status = escape(str(view.get("status")))
    console.print(f"workflow [bold]{escape(str(view['workflow_id']))}[/bold]: [{style}]{status}[/{style}]"
                  + (f" — {escape(str(view['reason']))}" if view.get("reason") else ""))
    for note in status_notes(view):
        console.print(f"  [yellow]{escape(note)}[/yellow]")
    for line in people_notes(view):
        console.print(f"  [cyan]{escape(line)}[/cyan]")
    table = Table("agent", "result", "ms", "reason")
    for agent, result in sorted((view.get("results") or {}).items()):
        table.add_row(Text(str(agent)), Text(str(result.get("detail_type") or result.get("outcome"))),
                      f"{float(result.get('duration_ms', 0)):.0f}", Text(str(result.get("reason") or "")))
    held = {str(r.get("agent")): (r, "no trigger") for r in view.get("before_trigger_results") or []}
    held.update((str(r.get("agent")), (r, "came before the trigger")) for r in view.get("late_results") or []
                if r.get("kind") == "before-trigger")
    for agent in view.get("missing") or []:
        if agent in held:  # answered, but for a request the coordinator had not seen (or has not yet)
            answer, why = held[agent]
            table.add_row(Text(str(agent)), Text(f"{answer.get('detail_type')} (not counted: {why})", style="dim"),
                          "", Text(str(answer.get("reason") or "")))
        else:
            table.add_row(Text(str(agent)), Text("missing", style="dim"), "", "")
    console.print(table)
    for line in model_usage(view):  # results that consulted a model: its tokens
        console.print(f"  {escape(line)}")
    timings = view.get("timings") or {}
    if timings.get("duration_ms") is not None:
        console.print(f"end to end {float(timings['duration_ms']):.0f} ms")


def _overdue_s(view: dict[str, Any], now: datetime | None) -> float | None:
    """Seconds since a running workflow's deadline passed, beyond Scheduler's minute; None when not overdue."""
    from functions.coordinator.times import parse_iso

    deadline = parse_iso(view.get("deadline_at"))
    if deadline is None:
        return None
    overdue = ((now or datetime.now(UTC)) - deadline).total_seconds()
    return overdue if overdue > 60 else None


def people_notes(view: dict[str, Any], now: datetime | None = None) -> list[str]:
    """Who a running workflow waits for, its cancel, its quorum, and the results kept aside as late (why)."""
    from agentbus.approvals import cancel_line, late_lines, quorum_line, waiting_lines

    lines = waiting_lines(view, now)
    lines += [line for line in (cancel_line(view), quorum_line(view)) if line]
    return lines + late_lines(view)


def _external_agents(workflow: Any) -> set[str]:
    """The names of ``workflow``'s external agents in this CLI's manifest (none for a workflow it does not list)."""
    from functions.manifest import MANIFEST

    try:
        return {agent.name for agent in MANIFEST.workflow(str(workflow)).external}
    except KeyError:
        return set()


def status_notes(view: dict[str, Any], now: datetime | None = None) -> list[str]:
    """What an operator must know beyond the status: a trigger that never came, came after the finish or was
    refused, results held for another version, an unpublished outcome, a main-table row that could not be
    written."""
    notes = [view["manifest_note"]] if view.get("manifest_note") else []
    trigger, trigger_error = view.get("trigger"), view.get("trigger_error")
    if trigger_error:
        notes.append(f"the trigger was invalid: {trigger_error}")
    elif not trigger:
        notes.append("the trigger never arrived: this record was opened by a result or a deadline")
    if view.get("trigger_after_finish"):
        notes.append(f"the trigger arrived later, at {view.get('trigger_received_at')}, after the workflow had "
                     f"finished ({view.get('status')}, {view.get('finished_at')}): its outcome was decided and "
                     "published without it and does not change (one outcome per request)")
    if held := view.get("before_trigger_results"):
        counts = ("those of its version count once it comes" if view.get("status") == "RUNNING"
                  else "the workflow finished before its trigger came")
        notes.append(f"received before the trigger, not counted ({counts}): "
                     + ", ".join(f"{r.get('agent')} ({r.get('detail_type')})" for r in held))
    if other := view.get("other_version_results"):
        notes.append(f"not counted, for another version of the request than {view.get('trigger_digest')}: "
                     + ", ".join(f"{r.get('agent')} ({r.get('detail_type')}, version {r.get('trigger_digest')})"
                                 for r in other))
    for refused in view.get("refused") or []:
        notes.append(f"another version of the request was refused ({refused.get('trigger_digest')}, event "
                     f"{refused.get('event_id', '?')}, {refused.get('received_at', '?')}): only version "
                     f"{view.get('trigger_digest')} counts; the refused one is in the coordinator's dead letters")
    if view.get("status") == "RUNNING" and (overdue := _overdue_s(view, now)) is not None:
        from agentbus.approvals import ago

        notes.append(f"its deadline {view.get('deadline_at')} passed {ago(overdue)} ago and it still runs: "
                     "the deadline has not been handled (EventBridge Scheduler fires within its minute; longer, see "
                     "the coordinator's and the deadline DLQ's dead letters, or the Deadline alarms)")
    if view.get("status") == "TIMED_OUT" and (missing := view.get("missing")):
        # Helper walkthrough rev20c, L5: only "missing" was shown, with nothing pointing to where an agent's failure
        # is kept. A person (an external agent) has no queue: 21B F3, the hint named a DLQ it does not have.
        people = _external_agents(view.get("workflow"))
        functions = [shown(str(m)) for m in missing if m not in people]
        answers = [shown(str(m)) for m in missing if m in people]
        if functions:
            notes.append(f"no result from {', '.join(functions)}: an agent that failed on the request keeps its "
                         "trigger in its dead-letter queue with the reason (`agentbus dead-letters --agent "
                         f"{functions[0]}`); a paused one keeps it in its queue (`agentbus agent list`)")
        if answers:
            notes.append(f"no answer from {', '.join(answers)} (a person or another system, with no queue of its "
                         "own): none came before the deadline")
    if view.get("status") not in (None, "RUNNING") and view.get("published") is False:
        notes.append("the outcome was not published: no outcome event is on the bus yet for this workflow")
    if view.get("projection_error"):
        notes.append(f"the main table's row was not written (the outcome was published without it): "
                     f"{view['projection_error']}")
    for agent, result in sorted((view.get("results") or {}).items()):
        reference = result.get("claim_check")
        if isinstance(reference, dict):
            where = f"s3://{reference.get('bucket')}/{reference.get('key')}"
            if result.get("claim_check_error"):
                notes.append(f"{agent}: its data could not be read from its claim check: {result['claim_check_error']}")
            else:
                notes.append(f"{agent}: its data ({reference.get('bytes')} bytes of result) is stored at {where}")
    return notes


def _say_hidden(hidden: int) -> None:
    if hidden:
        errors.print(f"{hidden} more dead letter(s) are being read by someone else (another listing or redrive, or "
                     "one interrupted) and are hidden from this one: they show again within 60 s", markup=False)


def _people(deployment: Deployment, args: argparse.Namespace) -> int:
    """approve, decline, cancel, pending: people in the loop (agentbus/approvals.py)."""
    from agentbus import approvals
    from agentbus import operations as ops

    if args.verb == "pending":
        rows = approvals.pending(deployment, args.workflow)
        if args.json:
            print(ops.as_json(rows))
            return 0
        if not rows:
            console.print("nothing waits for a person", markup=False)
            return 0
        safe = terminal_safe(rows)
        # An id is what the operator copies into `approve`: never cut (rich cut it to fit 80 columns, so two
        # long ids sharing a prefix looked the same); the other columns wrap instead.
        longest = max(len(str(row["workflow_id"])) for row in safe)
        table = Table("workflow", Column("id", no_wrap=True, min_width=longest), "waits for", "who", "asked",
                      "waits until")
        now = datetime.now(UTC)
        overdue = 0
        for row in safe:
            until = str(row["wait_until"] or "")
            if approvals.has_passed(row["wait_until"], now):
                until, overdue = f"{until} (passed)", overdue + 1
            table.add_row(Text(str(row["workflow"])), Text(str(row["workflow_id"])), Text(str(row["agent"])),
                          Text(str(row["kind"] or "")), Text(f"{approvals.ago(row['waiting_s'])} ago"), Text(until))
        console.print(table)
        if overdue:
            console.print(f"{overdue} of them waited past their time and are timed out as soon as the coordinator "
                          "reads their deadline (is it paused or behind? `agentbus agent list`); an answer now is "
                          "kept as late", markup=False)
        console.print(f"{len(rows)} waiting; answer with `agentbus approve ID` or `agentbus decline ID`",
                      markup=False)
        return 0
    if args.verb == "cancel":
        sent = approvals.cancel(deployment, args.workflow_id, workflow=args.workflow, by=args.by, reason=args.reason)
    else:
        sent = approvals.answer(deployment, args.workflow_id, args.verb, workflow=args.workflow, agent=args.agent,
                                by=args.by, note=args.note)
    console.print(shown(sent.describe()), markup=False)
    # An id starting with '-' goes after `--`, or the suggested command is a usage error.
    status = (["agentbus", "status", "--workflow", sent.workflow, "--", sent.workflow_id]
              if sent.workflow_id.startswith("-") else
              ["agentbus", "status", sent.workflow_id, "--workflow", sent.workflow])
    console.print(shown(f"  the coordinator decides; see `{shlex.join(status)}`"), markup=False)
    return 0


def _agent(deployment: Deployment, args: argparse.Namespace) -> int:
    from agentbus import operations as ops

    if args.action == "list":
        table = Table("agent", "state", "waiting", "in flight", "dead letters")
        rows = terminal_safe(ops.agent_list(deployment, args.name))
        for row in rows:
            state = Text(row["state"], style="yellow" if row["state"] == "paused" else "")
            table.add_row(Text(row["agent"]), state, str(row["waiting"]), str(row["in_flight"]),
                          str(row["dead_letters"]))
        console.print(table)
        if others := [str(row["agent"]) for row in rows if row.get("known") is False]:
            console.print(f"  not in this CLI's manifest (the deployment's own: another manifest, or a newer "
                          f"release): {', '.join(others)}", markup=False, soft_wrap=True)
        return 0
    if not args.name:
        raise ops.OperationError(f"agent {args.action} needs an agent NAME")
    ctl = ops.control(deployment)
    if not deployment.resources.local:  # disabling / enabling a mapping takes a while on AWS
        target = "Disabled" if args.action == "pause" else "Enabled"
        errors.print(f"  waiting for {shown(args.name)}'s event source mapping to be {target}…", markup=False)
    ctl.set_paused(args.name, args.action == "pause")
    where = "its events wait in its queue" if args.action == "pause" else "it processes its queue again"
    console.print(f"agent {shown(args.name)} {'paused' if args.action == 'pause' else 'resumed'}: {where}",
                  markup=False)
    return 0


def _up(args: argparse.Namespace) -> int:
    from agentbus.local.chaos import Chaos
    from agentbus.local.runtime import RuntimeOptions
    from agentbus.local.stack import LocalStack
    from agentbus.resources import LOCAL_REGION

    chaos = Chaos(args.chaos) if args.chaos else None
    options = RuntimeOptions(deadline_seconds=args.deadline, simulated_work_ms=args.work or None,
                             parameters=dict(args.param), chaos=chaos, external_wait_seconds=args.approval_wait)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        stack = LocalStack(port=args.port, host=args.host, options=options).start()
    except RuntimeError as error:
        errors.print(f"agentbus up: {error}", markup=False)
        return 2
    except OSError as error:  # the host does not resolve, or has no free port
        errors.print(f"agentbus up: cannot listen on {args.host}: {error.strerror or error}", markup=False)
        return 2
    resources = stack.started_resources
    console.print(f"agentbus local endpoint ready at {stack.url} in {LOCAL_REGION} "
                  f"(bus {resources.bus_name}; agents: {', '.join(resources.consumers)})", markup=False,
                  soft_wrap=True)
    if sample := next((f for w in stack.manifest.workflows for f in w.samples), None):
        # As copied into a new shell: no credentials needed, and the stack's region whatever the profile's.
        console.print(f"  try: env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID=local "
                      f"AWS_SECRET_ACCESS_KEY=local aws --region {LOCAL_REGION} --endpoint-url {stack.url} events "
                      f"put-events --entries file://{sample}", markup=False,
                      soft_wrap=True)  # one line, to be copied whole
    console.print("  Ctrl-C to stop", markup=False)
    sys.stdout.flush()
    # Wait with a timeout: a signal may be delivered to any thread, and Python runs its handler only when
    # the main thread runs bytecode; a main thread blocked in an untimed wait would never see SIGTERM.
    while not stopping.wait(timeout=0.5):
        if stack.endpoint.exit_code is not None:
            errors.print(f"agentbus up: the local endpoint process exited unexpectedly (exit code "
                         f"{stack.endpoint.exit_code}); its state is lost, stopping", markup=False)
            stack.stop()
            return 2
    console.print("stopping…", markup=False)
    # A second Ctrl-C / SIGTERM while stopping exits at once; a stop that hangs dumps every thread's stack.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: os._exit(130))
    faulthandler.dump_traceback_later(30, exit=False)
    stack.stop()
    faulthandler.cancel_dump_traceback_later()
    if chaos:
        console.print(f"chaos injected: {dict(chaos.injected)}", markup=False)
    console.print("stopped", markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
