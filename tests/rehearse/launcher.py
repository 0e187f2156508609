"""Start MiniStack with what agentbus's deployed stack needs from AWS and MiniStack 1.5.33 lacks.

Run by MiniStack's own interpreter (``.tools/ministack/bin/python``), never imported by the project:
MiniStack pins a botocore that conflicts with the project's. ``GATEWAY_PORT`` picks the port.

Bridged here, each as AWS behaves:
- ``AWS::Events::Archive``: MiniStack's CloudFormation refuses the template ("Unrecognized resource
  types") although its EventBridge keeps archives and replays them; the provisioner below calls that
  EventBridge's own archive API, as CloudFormation calls CreateArchive on AWS.
- Scheduler's ``EventBridgeParameters``: a schedule whose target is an event bus puts its event with the
  target's ``DetailType`` and ``Source`` on AWS; MiniStack sends "Scheduled Event" from "aws.scheduler",
  which no deadline rule matches. The wrapper below applies the two parameters to a schedule's event.
- Under ``AUTH=true`` (IAM evaluation), two request facts AWS gives IAM and MiniStack does not: the
  ``events:source`` condition key of PutEvents (the functions' roles may publish only under their own
  source), and the schedule's group in its ARN (MiniStack always says ``schedule/default/NAME``, so a
  grant on ``schedule/agentbus/*`` never matched).
"""

from __future__ import annotations

import json
import sys
from typing import Any

ARCHIVE_NAME_MAX = 48  # EventBridge's limit on archive names


def _archive_request(name: str, props: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": props["SourceArn"]}
    for key in ("Description", "RetentionDays", "KmsKeyIdentifier"):
        if key in props:
            request[key] = props[key]
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        request["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    return request


def _answer(response: tuple, action: str) -> dict[str, Any]:
    status, _headers, body = response
    payload = json.loads(body or b"{}")
    if status >= 300:
        raise ValueError(f"AWS::Events::Archive {action} failed: {payload}")
    return payload


def register() -> None:
    import ministack.services.eventbridge as eventbridge
    from ministack.services.cloudformation import provisioners

    def create(logical_id: str, props: dict[str, Any], stack_name: str) -> tuple[str, dict[str, str]]:
        name = props.get("ArchiveName") or provisioners._physical_name(stack_name, logical_id,
                                                                        max_len=ARCHIVE_NAME_MAX)
        answer = _answer(eventbridge._create_archive(_archive_request(name, props)), "create")
        return name, {"Arn": answer["ArchiveArn"]}

    def delete(physical_id: str, _props: dict[str, Any]) -> None:
        status, _headers, body = eventbridge._delete_archive({"ArchiveName": physical_id})
        if status >= 300 and b"ResourceNotFound" not in body:
            raise ValueError(f"AWS::Events::Archive delete failed: {body!r}")

    def update(physical_id: str, old_props: dict[str, Any], new_props: dict[str, Any],
               stack_name: str) -> tuple[str, dict[str, str]]:
        if new_props.get("SourceArn") != old_props.get("SourceArn") or (
                new_props.get("ArchiveName") not in (None, physical_id)):
            delete(physical_id, old_props)  # create-only properties: replace
            return create(physical_id, new_props, stack_name)
        request = _archive_request(physical_id, new_props)
        request.pop("EventSourceArn")
        answer = _answer(eventbridge._update_archive(request), "update")
        return physical_id, {"Arn": answer.get("ArchiveArn", "")}

    provisioners._RESOURCE_HANDLERS.setdefault(
        "AWS::Events::Archive", {"create": create, "update": update, "delete": delete})


def apply_scheduler_eventbridge_parameters() -> None:
    import ministack.services.eventbridge as eventbridge

    invoke_target = eventbridge._invoke_target

    def invoke(target: dict[str, Any], event: dict[str, Any], rule: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        parameters = target.get("EventBridgeParameters") or {}
        if "ScheduleExpression" in rule and parameters:  # a Scheduler schedule, not an EventBridge rule
            event = {**event, "Source": parameters.get("Source", event["Source"]),
                     "DetailType": parameters.get("DetailType", event["DetailType"])}
        return invoke_target(target, event, rule, *args, **kwargs)

    eventbridge._invoke_target = invoke


def complete_iam_request_facts() -> None:
    from ministack.core import iam_actions

    extract_resource_arn = iam_actions.extract_resource_arn
    request_tag_context = iam_actions.request_tag_context

    def resource_arn(service: str, method: str, path: str, headers: dict, body: bytes, query_params: dict,
                     region: str, account_id: str) -> str:
        arn = extract_resource_arn(service, method, path, headers, body, query_params, region, account_id)
        prefix = f"arn:aws:scheduler:{region}:{account_id}:schedule/default/"
        if service == "scheduler" and arn.startswith(prefix):
            group = _json(body).get("GroupName") or _first(query_params.get("groupName")) or "default"
            arn = f"arn:aws:scheduler:{region}:{account_id}:schedule/{group}/{arn[len(prefix):]}"
        return arn

    def condition_context(service: str, iam_action: str, body: bytes, params: dict) -> dict:
        context = dict(request_tag_context(service, iam_action, body, params))
        if iam_action == "events:PutEvents":
            sources = sorted({entry.get("Source", "") for entry in _json(body).get("Entries") or []})
            if sources:
                context["events:source"] = sources[0] if len(sources) == 1 else sources
        return context

    iam_actions.extract_resource_arn = resource_arn
    iam_actions.request_tag_context = condition_context


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def main() -> None:
    register()
    apply_scheduler_eventbridge_parameters()
    complete_iam_request_facts()
    from ministack.app import main as ministack_main

    sys.argv = [sys.argv[0]]
    ministack_main()


if __name__ == "__main__":
    main()
