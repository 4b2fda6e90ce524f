"""How the SQS sink maps SQS's answers to outcomes: the rows of docs/sinks.md's table that
moto's server cannot provoke (per-entry failures, throttling, denied credentials, KMS), with a
client that answers from a script."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tether.core.envelope import Event, make_event
from tether.core.errors import SinkUnavailableError
from tether.sinks.sqs import SqsSink

URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"


def client_error(code: str, status: int = 400, operation: str = "SendMessageBatch") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class ScriptedSqs:
    """Answers each SendMessageBatch / SendMessage with the next scripted answer: a dict (the
    parsed response, ``Successful`` filled in for entries not listed) or an exception."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.batches: list[list[dict[str, Any]]] = []
        self.singles: list[dict[str, Any]] = []

    async def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        self.batches.append(Entries)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        failed = {f["Id"] for f in answer.get("Failed", [])}
        ok = [{"Id": e["Id"], "MessageId": "m"} for e in Entries if e["Id"] not in failed]
        return {"Successful": answer.get("Successful", ok), "Failed": answer.get("Failed", [])}

    async def send_message(self, QueueUrl: str, **entry: Any) -> Any:
        self.singles.append(entry)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return {"MessageId": "m"}


def batch(n: int) -> list[Event]:
    return [make_event("A", {"n": i}, aggregate_id=f"a-{i}") for i in range(n)]


async def test_failed_entries_retry_or_dead_letter_by_sender_fault() -> None:
    client = ScriptedSqs(
        {
            "Failed": [
                {"Id": "1", "SenderFault": True, "Code": "InvalidMessageContents"},
                {"Id": "2", "SenderFault": False, "Code": "InternalError", "Message": "busy"},
            ]
        }
    )
    outcomes = await SqsSink(client, URL).publish(batch(3))  # type: ignore[arg-type]
    assert [o.ok for o in outcomes] == [True, False, False]
    assert outcomes[1].retryable is False and "InvalidMessageContents" in (outcomes[1].error or "")
    assert outcomes[2].retryable is True and "busy" in (outcomes[2].error or "")


async def test_an_entry_missing_from_the_answer_is_not_reported_delivered() -> None:
    client = ScriptedSqs({"Successful": [{"Id": "0", "MessageId": "m"}]})
    outcomes = await SqsSink(client, URL).publish(batch(2))  # type: ignore[arg-type]
    assert [o.ok for o in outcomes] == [True, False]
    assert outcomes[1].retryable is True


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (client_error("ThrottlingException"), "throttling"),
        (client_error("RequestThrottled", 403), "throttling"),
        (client_error("ServiceUnavailable", 503), "throttling"),
        (client_error("InternalError", 500), "throttling"),
        (client_error("SomethingNew", 502), "throttling"),
        (client_error("AWS.SimpleQueueService.NonExistentQueue"), "does not exist"),
        (client_error("QueueDoesNotExist"), "does not exist"),
        (client_error("AccessDenied", 403), "credentials or the permission"),
        (client_error("InvalidClientTokenId", 403), "credentials or the permission"),
        (client_error("KmsAccessDenied"), "credentials or the permission"),
        (EndpointConnectionError(endpoint_url=URL), "cannot reach SQS"),
    ],
)
async def test_queue_wide_answers_defer_the_whole_call(error: Exception, says: str) -> None:
    client = ScriptedSqs({}, error)  # the first of two calls succeeds, the second fails
    sink = SqsSink(client, URL)  # type: ignore[arg-type]
    with pytest.raises(SinkUnavailableError, match=says):
        await sink.publish(batch(15))


async def test_a_call_refused_for_its_content_is_resent_one_by_one() -> None:
    client = ScriptedSqs(
        client_error("InvalidParameterValue"),
        {},
        client_error("InvalidParameterValue", operation="SendMessage"),
        {},
    )
    outcomes = await SqsSink(client, URL).publish(batch(3))  # type: ignore[arg-type]
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].retryable is False
    assert len(client.singles) == 3 and "Id" not in client.singles[0]


async def test_a_queue_wide_answer_while_resending_still_defers() -> None:
    client = ScriptedSqs(
        client_error("BatchRequestTooLong"), {}, client_error("ThrottlingException")
    )
    with pytest.raises(SinkUnavailableError):
        await SqsSink(client, URL).publish(batch(3))  # type: ignore[arg-type]


async def test_fifo_entries_carry_ids_and_standard_ones_do_not() -> None:
    events = batch(2)
    fifo = ScriptedSqs({})
    await SqsSink(fifo, URL + ".fifo").publish(events)  # type: ignore[arg-type]
    assert [e["MessageGroupId"] for e in fifo.batches[0]] == ["a-0", "a-1"]
    assert [e["MessageDeduplicationId"] for e in fifo.batches[0]] == [str(e.id) for e in events]
    standard = ScriptedSqs({})
    await SqsSink(standard, URL).publish(events)  # type: ignore[arg-type]
    assert not {"MessageGroupId", "MessageDeduplicationId"} & set(standard.batches[0][0])
