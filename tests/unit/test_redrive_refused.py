"""`agentbus redrive` deletes from the dead-letter queue only the letters its queue took: a letter the batch send
refused stays in the DLQ and the verb fails naming it (it deleted every received letter, losing the refused)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from agentbus import operations


class Sqs:
    """Two letters in the DLQ; the queue refuses the second one's send."""

    def __init__(self) -> None:
        self.dlq = [{"Body": "first", "ReceiptHandle": "r-1"}, {"Body": "second", "ReceiptHandle": "r-2"}]
        self.queue: list[str] = []
        self.waits: list[int] = []

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        return {"Attributes": {"ApproximateNumberOfMessages": str(len(self.dlq))}}

    def receive_message(self, MaxNumberOfMessages: int, WaitTimeSeconds: int, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.waits.append(WaitTimeSeconds)
        return {"Messages": list(self.dlq[:MaxNumberOfMessages])}

    def send_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.queue += [e["MessageBody"] for e in Entries if e["MessageBody"] != "second"]
        return {"Successful": [{"Id": e["Id"]} for e in Entries if e["MessageBody"] != "second"],
                "Failed": [{"Id": e["Id"], "Code": "KMS.ThrottlingException", "Message": "slow down",
                            "SenderFault": False} for e in Entries if e["MessageBody"] == "second"]}

    def delete_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> dict[str, Any]:  # noqa: N803
        handles = {e["ReceiptHandle"] for e in Entries}
        self.dlq = [m for m in self.dlq if m["ReceiptHandle"] not in handles]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def test_a_letter_the_queue_refused_stays_in_the_dead_letter_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = Sqs()
    monkeypatch.setattr(operations, "_consumer_names", lambda *_: None)
    deployment = SimpleNamespace(client=lambda _service: sqs, resources=SimpleNamespace(
        consumers={"fraud": SimpleNamespace(queue_url="q", dlq_url="dlq")}))
    with pytest.raises(operations.OperationError,
                       match=r"moved 1 of fraud's dead letters back; its queue refused 1, which stay in the "
                             r"dead-letter queue \(first: KMS.ThrottlingException: slow down\)"):
        operations.redrive(deployment, "fraud")  # type: ignore[arg-type]
    assert sqs.queue == ["first"]
    assert [m["Body"] for m in sqs.dlq] == ["second"]
    assert all(wait > 0 for wait in sqs.waits)  # long polling: a short poll may answer empty while letters wait


def test_big_letters_are_sent_in_batches_sqs_takes() -> None:
    """SendMessageBatch takes 1 MiB in all: six 200 KB letters (inline events stay under the 200 KB claim-check
    threshold, a producer's trigger may not) were one batch of 1.2 MB, refused whole with BatchRequestTooLong."""
    import json

    import boto3
    from moto import mock_aws

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue, dlq = (sqs.create_queue(QueueName=name, Attributes={"MaximumMessageSize": "1048576"})["QueueUrl"]
                      for name in ("fraud", "fraud-dlq"))
        bodies = [json.dumps({"n": n, "blob": "x" * 200_000}) for n in range(6)]
        for body in bodies:
            sqs.send_message(QueueUrl=dlq, MessageBody=body)
        deployment = SimpleNamespace(client=lambda _service: sqs, resources=SimpleNamespace(
            consumers={"fraud": SimpleNamespace(queue_url=queue, dlq_url=dlq)}))
        assert operations.redrive(deployment, "fraud") == 6  # type: ignore[arg-type]
        moved = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            moved += [m["Body"] for m in batch]
            sqs.delete_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
        assert sorted(moved) == sorted(bodies)
        attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
        assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
            "0", "0")


def test_send_batches_keep_order_and_both_limits() -> None:
    kib = "x" * 1024
    assert operations.send_batches([kib] * 25) == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    # 400 KiB each: two fit in 1 MiB, the third starts a batch; one letter over the limit goes alone.
    assert operations.send_batches([kib * 400] * 3 + [kib * 1100, "a"]) == [[0, 1], [2], [3], [4]]
    assert operations.send_batches(["é" * 300_000, "é" * 300_000]) == [[0], [1]]  # bytes, not characters
    assert operations.send_batches([]) == []


def test_letters_sent_before_a_later_batch_fails_leave_the_dead_letter_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two batches of one receive (their sizes): the second's send raises; the first's letters were on their queue
    and stayed in the DLQ too, to be delivered again by the next redrive."""
    sqs = Sqs()
    big = "x" * (700 * 1024)
    sqs.dlq = [{"Body": big + "1", "ReceiptHandle": "r-1"}, {"Body": big + "2", "ReceiptHandle": "r-2"}]
    sends = 0

    def send_message_batch(Entries: list[dict[str, str]], **_: Any) -> dict[str, Any]:  # noqa: N803
        nonlocal sends
        sends += 1
        if sends == 2:
            raise RuntimeError("throttled")
        sqs.queue += [e["MessageBody"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    monkeypatch.setattr(sqs, "send_message_batch", send_message_batch)
    monkeypatch.setattr(operations, "_consumer_names", lambda *_: None)
    deployment = SimpleNamespace(client=lambda _service: sqs, resources=SimpleNamespace(
        consumers={"fraud": SimpleNamespace(queue_url="q", dlq_url="dlq")}))
    with pytest.raises(RuntimeError, match="throttled"):
        operations.redrive(deployment, "fraud")  # type: ignore[arg-type]
    assert sqs.queue == [big + "1"]
    assert [m["Body"] for m in sqs.dlq] == [big + "2"]
