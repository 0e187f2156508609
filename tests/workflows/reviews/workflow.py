"""``change-review``: a code change is reviewed by three independent reviewers in parallel; it is merged when
at least two approve (a k-of-n ``Quorum``) and refused as soon as two have declined (two approvals are then out
of reach). Test-only: it proves the completion rule needs no core edit."""

from __future__ import annotations

from functions.common.spec import (
    AGENT_SOURCE_PREFIX,
    Agent,
    Outcome,
    Outcomes,
    Parameter,
    Quorum,
    ResultType,
    Subscription,
    Trigger,
    Workflow,
)

PRODUCER_SOURCE = "agentbus.changes"
CHANGE_PROPOSED = Subscription(name="trigger", sources=(PRODUCER_SOURCE,), detail_types=("Change Proposed",))
REVIEWERS = {"reviewer-strict": "100", "reviewer-usual": "500", "reviewer-lenient": "2000"}


def reviewer(name: str, max_lines: str) -> Agent:
    return Agent(
        name=name,
        description=f"Approves a change of at most {max_lines} changed lines (MAX_LINES).",
        handler="tests.workflows.reviews.reviewer.handler.handler",
        source=f"{AGENT_SOURCE_PREFIX}{name}",
        parameters=(Parameter("MAX_LINES", max_lines, "the largest change this reviewer approves",
                              check="tests.workflows.reviews.models:line_count"),),
        # The three emit the same detail-types: the coordinator tells them apart by source.
        results=(
            ResultType("Change Approved", Outcome.SUCCESS, "the change is small enough for this reviewer"),
            ResultType("Change Declined", Outcome.FAILURE, "the change is too large for this reviewer"),
        ),
    )


CHANGE_REVIEW = Workflow(
    name="change-review",
    description="Three reviewers in parallel; two approvals merge the change, two refusals refuse it.",
    trigger=Trigger(CHANGE_PROPOSED, model="tests.workflows.reviews.models:ChangeProposed", id_field="change_id"),
    deadline_s=60,
    outcomes=Outcomes(completed="Change Merged", rejected="Change Refused", timed_out="Change Review Timed Out",
                      cancelled="Change Review Cancelled"),
    quorum=Quorum(agents=tuple(REVIEWERS), at_least=2),
    samples=("tests/workflows/reviews/events/change-proposed.json",),
    agents=tuple(reviewer(name, max_lines) for name, max_lines in REVIEWERS.items()),
)
