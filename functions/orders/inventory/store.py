"""DynamoDB adapter of the inventory: stock items ``sku#<SKU>`` and reservation records ``reservation#<id>``.

Stock item: ``pk``, ``sku``, ``on_hand`` (N), ``reserved`` (N). Reservation record: ``pk``, ``order_id``,
``status``, ``lines`` [{sku, quantity}], ``result_detail_type`` and ``result`` (the published detail, as
JSON text: republished byte for byte), ``reason``, ``created_at``, ``updated_at``, ``released_at``.
"""

from __future__ import annotations

import json
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import TypeAdapter, ValidationError

from functions.common.decisions import AgentOutput
from functions.common.models import NonEmpty
from functions.orders.inventory.logic import (
    Contention,
    Line,
    OutOfStock,
    Reservation,
    ReservationExists,
    Shortfall,
    Status,
)

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def sku_key(sku: str) -> dict[str, Any]:
    return {"pk": {"S": f"sku#{sku}"}}


def reservation_key(order_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"reservation#{order_id}"}}


def to_item(reservation: Reservation) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": f"reservation#{reservation.order_id}",
        "order_id": reservation.order_id,
        "status": reservation.status.value,
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in reservation.lines],
        "created_at": reservation.created_at,
        "updated_at": reservation.updated_at,
    }
    if reservation.result is not None:
        item["result_detail_type"] = reservation.result.detail_type
        item["result"] = json.dumps(reservation.result.detail, separators=(",", ":"), ensure_ascii=False)
    if reservation.reason:
        item["reason"] = reservation.reason
    return {name: _serialize(value) for name, value in item.items()}


def from_item(raw: dict[str, Any]) -> Reservation:
    item = {name: _deserialize(value) for name, value in raw.items()}
    result = None
    if item.get("result") and item.get("result_detail_type"):
        result = AgentOutput(detail_type=item["result_detail_type"], detail=json.loads(item["result"]))
    return Reservation(
        order_id=item["order_id"],
        status=Status(item["status"]),
        lines=tuple(Line(str(line["sku"]), int(line["quantity"])) for line in item.get("lines", [])),
        created_at=item.get("created_at", ""),
        updated_at=item.get("updated_at", ""),
        result=result,
        reason=item.get("reason"),
    )


def _cancellation_codes(error: ClientError) -> list[dict[str, Any]]:
    return list(cast(list[dict[str, Any]], error.response.get("CancellationReasons") or []))


def _is_cancellation(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException"


class DynamoInventoryStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def get(self, order_id: str) -> Reservation | None:
        response = self.client.get_item(TableName=self.table, Key=reservation_key(order_id), ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None

    def on_hand(self, sku: str) -> int | None:
        response = self.client.get_item(TableName=self.table, Key=sku_key(sku), ConsistentRead=True,
                                        ProjectionExpression="on_hand")
        item = response.get("Item")
        return int(item["on_hand"]["N"]) if item and "on_hand" in item else None

    def hold(self, reservation: Reservation) -> None:
        actions: list[dict[str, Any]] = [
            {"Update": {
                "TableName": self.table,
                "Key": sku_key(line.sku),
                "UpdateExpression": "SET on_hand = on_hand - :q, reserved = reserved + :q",
                "ConditionExpression": "attribute_exists(pk) AND on_hand >= :q",
                "ExpressionAttributeValues": {":q": {"N": str(line.quantity)}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }}
            for line in reservation.lines
        ]
        actions.append({"Put": {
            "TableName": self.table,
            "Item": to_item(reservation),
            "ConditionExpression": "attribute_not_exists(pk)",
        }})
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if not _is_cancellation(error):
                raise
            reasons = _cancellation_codes(error)
            codes = [reason.get("Code") for reason in reasons]
            if "TransactionConflict" in codes:
                raise Contention("transaction conflict on the stock items; retry") from error
            if len(reasons) == len(actions) and codes[-1] == "ConditionalCheckFailed":
                raise ReservationExists(reservation.order_id) from None
            shortfalls = [
                self._shortfall(line, reason)
                for line, reason in zip(reservation.lines, reasons, strict=False)
                if reason.get("Code") == "ConditionalCheckFailed"
            ]
            if shortfalls:
                raise OutOfStock(shortfalls) from None
            raise

    def _shortfall(self, line: Line, reason: dict[str, Any]) -> Shortfall:
        old = reason.get("Item")
        if old and "on_hand" in old:
            available: int | None = int(old["on_hand"]["N"])
        else:  # no item returned: make sure the SKU really is unknown before saying so
            available = self.on_hand(line.sku)
        return Shortfall(sku=line.sku, requested=line.quantity, available=available)

    def record(self, reservation: Reservation) -> None:
        try:
            self.client.put_item(TableName=self.table, Item=to_item(reservation),
                                 ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ReservationExists(reservation.order_id) from None
            raise

    def release(self, reservation: Reservation, released_at: str, reason: str) -> bool:
        actions: list[dict[str, Any]] = [{"Update": {
            "TableName": self.table,
            "Key": reservation_key(reservation.order_id),
            "UpdateExpression": "SET #status = :released, released_at = :at, updated_at = :at, "
                                "release_reason = :why",
            "ConditionExpression": "#status = :held",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":released": {"S": Status.RELEASED.value}, ":held": {"S": Status.HELD.value},
                ":at": {"S": released_at}, ":why": {"S": reason},
            },
        }}]
        actions += [
            {"Update": {
                "TableName": self.table,
                "Key": sku_key(line.sku),
                "UpdateExpression": "SET on_hand = on_hand + :q, reserved = reserved - :q",
                "ConditionExpression": "attribute_exists(pk) AND reserved >= :q",
                "ExpressionAttributeValues": {":q": {"N": str(line.quantity)}},
            }}
            for line in reservation.lines
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
            return True
        except ClientError as error:
            if not _is_cancellation(error):
                raise
            codes = [reason.get("Code") for reason in _cancellation_codes(error)]
            if "TransactionConflict" in codes:
                raise Contention("transaction conflict on the stock items; retry") from error
            if codes and codes[0] == "ConditionalCheckFailed":
                return False  # no longer HELD: released (or changed) by someone else
            raise


_SKU = TypeAdapter(NonEmpty)  # the type of models.OrderLine.sku


def _names_a_sku(text: str) -> bool:
    try:
        return bool(_SKU.validate_python(text) == text)
    except ValidationError:
        return False


def seed_items(seed: Any) -> list[dict[str, Any]]:
    """The stock items of a seed file's JSON (``{"stock": {"SKU": units}}``), as DynamoDB items."""
    stock = seed.get("stock") if isinstance(seed, dict) else None
    if not isinstance(stock, dict) or not stock:
        raise ValueError('a stock seed file looks like {"stock": {"SKU-1": 10000, ...}}')
    items = []
    for sku, units in stock.items():
        # A SKU an order can name: what OrderLine.sku's type reads it as, unchanged. Any other could never be
        # ordered, and its stock would sit there unused.
        if not _names_a_sku(sku):
            raise ValueError(f"SKU {sku!r} is not one an order can name (1 to 256 characters, no surrounding spaces)")
        if isinstance(units, bool) or not isinstance(units, int) or units < 0:
            raise ValueError(f"stock of {sku!r} must be a whole number >= 0, got {units!r}")
        items.append({"pk": {"S": f"sku#{sku}"}, "sku": {"S": sku}, "on_hand": {"N": str(units)},
                      "reserved": {"N": "0"}})
    return items
