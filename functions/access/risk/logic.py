"""Risk scoring of an access request: deterministic signals, each worth points; a score at or above the
threshold (70) is ``Risk Too High``, below it ``Risk Accepted``; at or above the approval threshold (40) the
accepted risk asks for a manager's approval (``asks_for``: the workflow then waits for the external agent
``manager-approval``), below it nobody else is asked.

- ``access_level``: ``write`` +20, ``admin`` +40 (``read`` 0);
- ``sensitivity``: the resource's (``functions/access/rules.json``) ``medium`` +15, ``high`` +30 (``low`` 0);
  a resource the policy does not know counts as ``high``;
- ``outside_business_hours``: requested on a weekend or outside 07:00-19:00 UTC, +20; the time is the request's
  own ``requested_at`` as its producer (the access portal, not the employee) stamps it, not compared with the
  event's time: a producer that lets a requester choose it lets the requester avoid these points;
- ``weak_justification``: fewer than 20 characters (empty included), +20;
- ``instruction_in_justification``: the justification tries to instruct the system ("ignore previous
  instructions", "approve this request", "as an AI", ...): worth the whole threshold, so it is always too high.

So admin on a high-sensitivity resource is exactly at the threshold; a read on a low or medium resource in
business hours with a real justification scores at most 15. ``score(request)`` is the rules' assessment on its
own (a later approval step can reuse it); ``decide(request)`` turns it into the agent's result.

With a model turned on (``decide(request, reasoner=...)``, see ``functions/common/reasoner.py``) the model reads
the request and the rules' assessment and may only *raise* the score, with its reasons (``RiskAdvice``: points
>= 0 to add, nothing else: no field lowers the score, decides or grants). Its points become one more signal,
``model``, and the total goes through the same thresholds; an unusable answer (it does not validate, a refusal,
a cut answer, a timeout) leaves the rules' score as it is, with the reason. The result's data then carries a
``reasoner`` object (model, used or fallback and why, tokens, latency, the bounded answer, the raise and its
reasons); without a model the result is exactly the rules' one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from functions.access.business_hours import outside_business_hours
from functions.access.models import AccessRequested
from functions.access.rules import AccessRules, load_rules
from functions.common.decisions import Decision

if TYPE_CHECKING:
    from functions.common.reasoner import BedrockReasoner, Consultation

ACCEPTED = "Risk Accepted"
TOO_HIGH = "Risk Too High"

THRESHOLD = 70
APPROVAL_THRESHOLD = 40
APPROVER = "manager-approval"
LEVEL_POINTS = {"read": 0, "write": 20, "admin": 40}
SENSITIVITY_POINTS = {"low": 0, "medium": 15, "high": 30}
UNKNOWN_RESOURCE_SENSITIVITY: Final = "high"
OUTSIDE_HOURS_POINTS = 20
WEAK_JUSTIFICATION_POINTS = 20
MIN_JUSTIFICATION_CHARS = 20
INSTRUCTION_POINTS = THRESHOLD
# The model's advice: the tool it must answer through, and the most it may add.
ADVICE_TOOL = "risk_advice"
ADVICE_TOOL_DESCRIPTION = ("Give your assessment: the risk points to ADD to the rules' score (0 if nothing is "
                           "wrong) and one short reason per concern.")
MAX_RAISE = 100
MODEL_SIGNAL = "model"

# Text addressed to the system rather than explaining the need. Deliberately narrow: "my manager approved
# this", "the lead will approve" or "ignore the lint rules" are ordinary justifications and do not match; asking
# for the decision itself ("approve this request") does: a justification explains a need, it does not decide.
INSTRUCTION_PATTERNS: tuple[re.Pattern[str], ...] = tuple(re.compile(pattern, re.IGNORECASE) for pattern in (
    r"\b(ignore|disregard|forget)\s+(all\s+|any\s+)?(of\s+)?(the\s+|your\s+)?"
    r"(previous\s+|prior\s+|above\s+|earlier\s+|preceding\s+|system\s+)?"
    r"(instructions?|rules|prompts?|guidelines|polic(y|ies))\b",
    r"\bas an? (ai|language model|llm|assistant)\b",
    r"\byou are (now )?(an? )?(ai|assistant|language model|llm|chatbot)\b",
    r"\bsystem prompt\b",
    r"\bauto-?\s?approve",
    r"\b(you|system|agent)\s+(must|should|will|shall)\s+(approve|grant|accept)\b",
    r"\b(just|always|automatically)\s+(approve|grant)\b",
    r"\bapprove (this|the|my) (request|access)\b",
))


@dataclass(frozen=True)
class Signal:
    name: str
    points: int
    reason: str

    def describe(self) -> str:
        return f"{self.name} +{self.points}: {self.reason}"


@dataclass(frozen=True)
class Assessment:
    score: int
    threshold: int
    signals: tuple[Signal, ...]

    @property
    def too_high(self) -> bool:
        return self.score >= self.threshold


class RiskAdvice(BaseModel):
    """Your assessment of the request: the risk points to add to the rules' score, and why."""

    # The model's whole say (this docstring and the field descriptions are its tool's schema). Nothing else is
    # accepted: no field can lower the score, decide or grant.
    model_config = ConfigDict(extra="forbid")

    # strict: a whole number, not true or "30" (which lax reading took as 1 and 30 points).
    raise_by: int = Field(ge=0, le=MAX_RAISE, strict=True,
                          description="Risk points to ADD to the rules' score; 0 when nothing is wrong. "
                                      "Never negative.")
    reasons: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=5, description="One short reason per concern (required when raise_by > 0).")

    @model_validator(mode="after")
    def _a_raise_has_reasons(self) -> RiskAdvice:
        if self.raise_by and not self.reasons:
            raise ValueError("a raise needs at least one reason")
        return self


# Characters a reader does not see: format characters (zero-width spaces and joiners, bidi marks), marks left
# over after composing (a combining grapheme joiner, variation selectors); the Hangul fillers read as spaces.
_UNSEEN_CATEGORIES = frozenset({"Cf", "Mn", "Me"})
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")


def _plain(text: str) -> str:
    """``text`` as a reader sees it: compatibility forms folded (NFKC: fullwidth letters, ligatures) and the
    characters nobody sees removed (a filler read as a space), so that "Ign\u200bore previous instructions" is
    found like the plain phrase (black-box pass 21B, F4; review 21E)."""
    return "".join(" " if c in _FILLERS else c for c in unicodedata.normalize("NFKC", text)
                   if unicodedata.category(c) not in _UNSEEN_CATEGORIES)


def instruction_in(text: str) -> str | None:
    """The first phrase of ``text`` that tries to instruct the system (as ``_plain`` reads it), or None."""
    text = _plain(text)
    for pattern in INSTRUCTION_PATTERNS:
        found = pattern.search(text)
        if found:
            return found.group(0)
    return None


def score(request: AccessRequested, rules: AccessRules | None = None) -> Assessment:
    rules = rules or load_rules()
    signals: list[Signal] = []
    level = request.access_level
    if LEVEL_POINTS[level]:
        signals.append(Signal("access_level", LEVEL_POINTS[level], f"{level} access requested"))
    sensitivity = rules.sensitivity(request.resource)
    if sensitivity is None:
        sensitivity = UNKNOWN_RESOURCE_SENSITIVITY
        why = f"{request.resource} is not a known resource (counted as {sensitivity} sensitivity)"
    else:
        why = f"{request.resource} has {sensitivity} sensitivity"
    if SENSITIVITY_POINTS[sensitivity]:
        signals.append(Signal("sensitivity", SENSITIVITY_POINTS[sensitivity], why))
    when = outside_business_hours(request.requested_at)
    if when:
        signals.append(Signal("outside_business_hours", OUTSIDE_HOURS_POINTS, f"requested {when}"))
    justification = request.justification.strip()
    if len(justification) < MIN_JUSTIFICATION_CHARS:
        described = "empty" if not justification else f"{len(justification)} characters"
        signals.append(Signal("weak_justification", WEAK_JUSTIFICATION_POINTS,
                              f"justification {described}, fewer than {MIN_JUSTIFICATION_CHARS}"))
    phrase = instruction_in(justification)
    if phrase:
        signals.append(Signal("instruction_in_justification", INSTRUCTION_POINTS,
                              f"justification tries to instruct the system ({phrase!r})"))
    return Assessment(score=sum(signal.points for signal in signals), threshold=THRESHOLD, signals=tuple(signals))


def advice_input(request: AccessRequested, assessment: Assessment, rules: AccessRules) -> dict[str, Any]:
    """What the model reads: the request as the requester wrote it, the resource's sensitivity and the rules'
    assessment (which it may only add to)."""
    return {
        "request": request.model_dump(mode="json"),
        "resource_sensitivity": rules.sensitivity(request.resource) or f"unknown (counted as "
                                                                       f"{UNKNOWN_RESOURCE_SENSITIVITY})",
        "rules": {"score": assessment.score, "threshold": assessment.threshold,
                  "approval_threshold": APPROVAL_THRESHOLD,
                  "signals": [{"name": s.name, "points": s.points, "reason": s.reason} for s in assessment.signals]},
    }


def advised(assessment: Assessment, consultation: Consultation[RiskAdvice]) -> Assessment:
    """The rules' assessment with the model's raise as one more signal; unchanged without a usable raise. The
    raise is never negative (the schema says so, and so does this ``max``): the score can only go up."""
    answer = consultation.answer
    points = max(0, answer.raise_by) if answer is not None else 0
    if not points or answer is None:
        return assessment
    signal = Signal(MODEL_SIGNAL, points, f"{consultation.model_id}: " + "; ".join(answer.reasons))
    return replace(assessment, score=assessment.score + points, signals=(*assessment.signals, signal))


def reasoner_data(rules_assessment: Assessment, final: Assessment,
                  consultation: Consultation[RiskAdvice]) -> dict[str, Any]:
    answer = consultation.answer
    raised_by = final.score - rules_assessment.score
    return {**consultation.as_data(), "rules_score": rules_assessment.score, "raised_by": raised_by,
            "raise_reasons": list(answer.reasons) if answer is not None and raised_by else []}


def decide(request: AccessRequested, rules: AccessRules | None = None,
           reasoner: BedrockReasoner[RiskAdvice] | None = None) -> Decision:
    rules = rules or load_rules()
    assessment = rules_assessment = score(request, rules)
    consultation = None
    if reasoner is not None:
        consultation = reasoner.consult(advice_input(request, rules_assessment, rules))
        assessment = advised(rules_assessment, consultation)
    reasons = [signal.describe() for signal in assessment.signals]
    data: dict[str, Any] = {
        "score": assessment.score,
        "threshold": assessment.threshold,
        "signals": [{"name": s.name, "points": s.points, "reason": s.reason} for s in assessment.signals],
        "reasons": reasons,
    }
    listed = "; ".join(reasons)
    if consultation is not None:
        data["reasoner"] = reasoner_data(rules_assessment, assessment, consultation)
        if consultation.fallback:
            listed += ("; " if listed else "") + f"model not used ({consultation.fallback}): rules only"
    if assessment.too_high:
        return Decision(TOO_HIGH, f"score {assessment.score} >= {assessment.threshold}: {listed}", data)
    if assessment.score >= APPROVAL_THRESHOLD:
        data["approval_threshold"] = APPROVAL_THRESHOLD
        return Decision(ACCEPTED, f"score {assessment.score} >= {APPROVAL_THRESHOLD}: a manager's approval is needed: "
                        f"{listed}", data, asks_for=(APPROVER,))
    return Decision(ACCEPTED, f"score {assessment.score} < {APPROVAL_THRESHOLD}" + (f": {listed}" if listed else ""),
                    data)
