"""What a rule's target receives, built as EventBridge builds it (PutEvents rule 9, ``put_events.apply``).

moto builds an SQS target's message from a text template filled by string replacement and read back with
``json.loads`` inside the PutEvents call, and ignores a target's ``Input`` and ``InputPath``. So a transformer that
is valid on EventBridge failed every PutEvents its rule matched with HTTP 500, after the rules evaluated before it
had delivered the event (botocore's retries delivered it again, five times): ``{"id": <id>}`` with a text value
(EventBridge writes it as a JSON string), a text template (``value <v> arrived``), a path the event lacks. A
constant ``Input`` or an ``InputPath`` delivered the whole event instead. And the envelope lacked ``account``
(black-box pass 9A, F2-F4).

EventBridge's rules, from its user guide ("Amazon EventBridge input transformation") and API reference
(``Target``, ``InputTransformer``):

- no ``Input``, ``InputPath`` or ``InputTransformer``: the event, ``version``, ``id``, ``detail-type``,
  ``source``, ``account``, ``time`` (ISO-8601, seconds), ``region``, ``resources``, ``detail``; a replayed event
  also has ``replay-name``;
- ``Input``: that text, as it is;
- ``InputPath``: the JSON of what the path selects in the event;
- ``InputTransformer``: each ``<name>`` of the template is the value its ``InputPathsMap`` path selects, or a
  predefined ``aws.events.*`` variable. In a JSON template (an object, or an array ``[...]``) a value outside a
  string literal is written as JSON (a text value quoted) and inside one as it is, unescaped; in a text template
  every value is written as it is. A path the event lacks creates no variable (written as ``null`` outside a
  string literal of a JSON template, as nothing elsewhere). A JSON output is passed minified.

A target whose input cannot be built gets nothing; the event's other targets and the PutEvents call are not
affected: EventBridge builds a target's input after PutEvents has answered. What EventBridge refuses at
``PutTargets`` is refused there (``invalid_target``, black-box pass 9D F6): an ``Input`` that is not JSON text, a
path that is not a JSON path, more than one of ``Input``, ``InputPath``, ``InputTransformer``; before, such a target
was accepted locally and then got nothing, with a warning in the log only.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime
from typing import Any

from functions.common.moments import iso_ms, iso_s

ENVELOPE_KEYS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
_PLACEHOLDER = re.compile(r"<([^<>\s\"]+)>")
_MISSING = object()


class TargetInputError(ValueError):
    """The target's input cannot be built from this event (the reason names the path or template)."""


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    """The event as a target without an input setting receives it, in EventBridge's key order."""
    public = {key: event.get(key) for key in ENVELOPE_KEYS}
    public["version"] = "0"
    public["time"] = iso_time(event.get("time"))
    if "replay-name" in event:
        public["replay-name"] = event["replay-name"]
    return public


def iso_time(value: Any, milliseconds: bool = False) -> Any:
    """An epoch time (moto keeps the entry's ``Time`` or its own clock as seconds) as EventBridge writes it."""
    try:
        moment = datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return value  # already text (a Time sent as an ISO-8601 string)
    return iso_ms(moment) if milliseconds else iso_s(moment)


def target_input(target: dict[str, Any], event: dict[str, Any], rule_name: str, rule_arn: str) -> str:
    """The message body ``target`` receives for ``event`` (moto's internal event of a matching rule)."""
    public = envelope(event)
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        found = _select(target["InputPath"], public)
        if found is _MISSING:
            raise TargetInputError(f"InputPath {target['InputPath']!r} selects nothing in the event")
        return _compact(found)
    transformer = target.get("InputTransformer")
    if not transformer:
        return json.dumps(public)
    variables = {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_name,
        "aws.events.event": {key: value for key, value in public.items() if key != "detail"},
        "aws.events.event.json": public,
        "aws.events.event.ingestion-time": iso_time(event.get("ingestion-time"), milliseconds=True),
    }
    declared = set(variables)
    for name, path in (transformer.get("InputPathsMap") or {}).items():
        if name in variables:
            continue  # a predefined name: EventBridge refuses it at PutTargets; here the predefined one stays
        declared.add(name)
        found = _select(path, public)
        if found is not _MISSING:
            variables[name] = found
    return fill(transformer.get("InputTemplate") or "", variables, declared)


def fill(template: str, variables: dict[str, Any], declared: set[str] | None = None) -> str:
    """The template with its placeholders written as EventBridge writes them (module docstring). A ``<name>``
    that is no declared variable (``declared``: the map's names and the predefined ones) is text, as ``<b>``."""
    declared = set(variables) if declared is None else declared
    stripped = template.strip()
    as_json = stripped[:1] == "{" or (stripped[:1] == "[" and stripped[-1:] == "]")
    out: list[str] = []
    in_string = False
    index = 0
    while index < len(template):
        char = template[index]
        if char == '"' and not _escaped(template, index):
            in_string = not in_string
        elif char == "<":
            placeholder = _PLACEHOLDER.match(template, index)
            if placeholder:
                name = placeholder.group(1)
                value = variables.get(name, _MISSING)
                if name not in declared:
                    out.append(char)  # not a placeholder: text such as "a < b" or "<b>bold</b>"
                    index += 1
                    continue
                quoted = as_json and not in_string
                if value is _MISSING:
                    out.append("null" if quoted else "")
                elif isinstance(value, str) and not quoted:
                    out.append(value)
                else:
                    out.append(_compact(value))
                index = placeholder.end()
                continue
        out.append(char)
        index += 1
    text = "".join(out)
    if as_json:
        try:
            return _compact(json.loads(text))
        except ValueError:
            return text  # delivered as built: EventBridge does not check a template's output either
    return text


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - backslashes - 1 >= 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


# The API reference's limits (``Target``, ``InputTransformer``).
MAX_INPUT_CHARS = 8192
MAX_PATH_CHARS = 256
MAX_PATHS_MAP_ENTRIES = 100
_PATHS_MAP_KEY = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def invalid_target(target: dict[str, Any]) -> str | None:
    """Why EventBridge's ``PutTargets`` would refuse this target's input (a ``ValidationException`` message naming
    the target and the field), or None."""
    name = target.get("Id")
    given = [field for field in ("Input", "InputPath", "InputTransformer") if target.get(field) is not None]
    if len(given) > 1:
        return f"Target {name}: only one of Input, InputPath and InputTransformer may be given, got {', '.join(given)}"
    if "Input" in given:
        text = target["Input"]
        if not isinstance(text, str) or len(text) > MAX_INPUT_CHARS or not _is_json(text):
            return f"Input for target {name} is not a valid JSON text (at most {MAX_INPUT_CHARS} characters)."
    if "InputPath" in given and (problem := _path_problem(target["InputPath"])):
        return f"InputPath for target {name} is not a valid JSON path: {problem}"
    if "InputTransformer" in given:
        transformer = target["InputTransformer"]
        template = transformer.get("InputTemplate") if isinstance(transformer, dict) else None
        if not isinstance(template, str) or not 1 <= len(template) <= MAX_INPUT_CHARS:
            return f"InputTransformer for target {name}: InputTemplate must be 1 to {MAX_INPUT_CHARS} characters."
        paths = transformer.get("InputPathsMap") or {}
        if not isinstance(paths, dict) or len(paths) > MAX_PATHS_MAP_ENTRIES:
            return f"InputPathsMap for target {name} must map at most {MAX_PATHS_MAP_ENTRIES} names to JSON paths."
        for key, path in paths.items():
            if not isinstance(key, str) or not _PATHS_MAP_KEY.match(key) or key.lower().startswith("aws."):
                return (f"InputPathsMap for target {name}: {key!r} is not a variable name (letters, digits, _ and "
                        "-; names starting with AWS. are EventBridge's own).")
            if problem := _path_problem(path):
                return f"InputPathsMap for target {name}: the path of {key!r} is not a valid JSON path: {problem}"
    return None


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _path_problem(path: Any) -> str | None:
    if not isinstance(path, str) or not path.startswith("$") or len(path) > MAX_PATH_CHARS:
        return f"{path!r} must be text starting with $, at most {MAX_PATH_CHARS} characters"
    try:
        _compiled(path)
    except Exception as error:  # jsonpath_ng raises its own exception types for every grammar it cannot read
        return f"{path!r} cannot be read ({error})"
    return None


def _select(path: Any, event: dict[str, Any]) -> Any:
    if not isinstance(path, str):
        raise TargetInputError(f"path {path!r} is not text")
    try:
        matches = _compiled(path).find(event)
    except Exception as error:  # jsonpath_ng raises its own exception types for every grammar it cannot read
        raise TargetInputError(f"path {path!r} cannot be read: {error}") from None
    return matches[0].value if matches else _MISSING


@functools.lru_cache(maxsize=1024)
def _compiled(path: str) -> Any:
    """A target's path, parsed once: the same few paths are read for every event its rule matches."""
    from jsonpath_ng.ext.parser import parse  # moto's own JSONPath reader (a dependency of its events backend)

    return parse(path)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
