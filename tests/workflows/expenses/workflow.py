"""``expense-claim``: an employee's expense claim is checked for a receipt and against the category's budget,
in parallel; the coordinator approves it when both agree and writes it to the expense-claims table."""

from __future__ import annotations

from functions.common.spec import (
    AGENT_SOURCE_PREFIX,
    Agent,
    Outcome,
    Outcomes,
    Parameter,
    Projection,
    ResultType,
    Subscription,
    Table,
    Trigger,
    Workflow,
)

PRODUCER_SOURCE = "agentbus.expenses"
EXPENSE_SUBMITTED = Subscription(name="trigger", sources=(PRODUCER_SOURCE,), detail_types=("Expense Submitted",))

RECEIPT_THRESHOLD = Parameter("RECEIPT_THRESHOLD", "25.00", "claims above this amount need a receipt",
                              check="tests.workflows.expenses.models:amount")

TABLES = (
    Table("expense-budgets", "category", "the remaining budget per expense category",
          seed_file="tests/workflows/expenses/seed-budgets.json"),
    Table("expense-claims", "claim_id", "each expense claim's final record"),
)

EXPENSE_CLAIM = Workflow(
    name="expense-claim",
    description="An expense claim is checked for a receipt and against its category's budget, in parallel.",
    trigger=Trigger(EXPENSE_SUBMITTED, model="tests.workflows.expenses.models:ExpenseSubmitted", id_field="claim_id"),
    deadline_s=60,
    outcomes=Outcomes(completed="Expense Approved", rejected="Expense Refused", timed_out="Expense Timed Out"),
    projection=Projection(table="expense-claims", function="tests.workflows.expenses.projection:claim_item"),
    samples=("tests/workflows/expenses/events/expense-submitted.json",),
    agents=(
        Agent(
            name="receipts",
            description="A claim above the threshold must come with a receipt.",
            handler="tests.workflows.expenses.receipts.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}receipts",
            parameters=(RECEIPT_THRESHOLD,),
            results=(
                ResultType("Receipt Accepted", Outcome.SUCCESS, "a receipt, or an amount under the threshold"),
                ResultType("Receipt Missing", Outcome.FAILURE, "no receipt for an amount over the threshold"),
            ),
        ),
        Agent(
            name="budget",
            description="The claim fits in its category's remaining budget.",
            handler="tests.workflows.expenses.budget.handler.handler",
            source=f"{AGENT_SOURCE_PREFIX}budget",
            tables=("expense-budgets",),
            results=(
                ResultType("Budget Available", Outcome.SUCCESS, "the amount fits in the remaining budget"),
                ResultType("Budget Exceeded", Outcome.FAILURE, "over the remaining budget, or no budget"),
            ),
        ),
    ),
)
