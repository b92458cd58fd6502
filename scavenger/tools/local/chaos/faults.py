"""The faults inside one worker container, as botocore hooks on its clients.

Kills at four points (mid-page, after a delete, after a checkpoint, after a
continuation), throttles and 500s before a request is sent, 500s after it took
effect, and single failed statements of a batch. Each container keeps the books
the check needs (see :mod:`scavenger.tools.local.chaos.books`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, cast

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.httpsession import URLLib3Session

from scavenger.tools.local.chaos.books import (
    CHECKPOINT_SENT,
    CHECKPOINTED,
    DELETED,
    SETTLED,
    UNCOUNTED,
    FaultJournal,
)
from scavenger.tools.local.chaos.calls import (
    BATCH,
    CALL,
    CallRecord,
    batch_deletes,
    is_checkpoint,
    segment_read,
)
from scavenger.tools.local.chaos.plan import ChaosPlan, sub_seed
from scavenger.tools.local.chaos.responses import (
    error_response,
    internal_error,
    ok_response,
    statement_error,
    throttle_code,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

Handler = Callable[[Any, Any], Any]
RECORD_ENDED = "record ended before its checkpoint"


@dataclass(eq=False)
class ContainerChaos:
    """The faults of one container, as botocore hooks on its DynamoDB and SQS clients.

    It also keeps the books the final check needs: deletes that happened but that
    the ledger will never count, because the container died (or its record failed)
    before the checkpoint that carries them, or because the delete's response was
    lost and the retry found the item gone (counted as skipped).
    """

    plan: ChaosPlan
    ordinal: int
    journal: FaultJournal
    _: KW_ONLY
    table: str
    ledger_table: str
    may_kill: bool
    die: Callable[[str], None]
    pending: int = field(init=False, default=0)  # deletes since the last checkpoint landed
    segment: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.random = random.Random(sub_seed(self.plan.seed, "container", self.ordinal))
        self._http = URLLib3Session(timeout=10)

    def install(self, client: DynamoDBClient | SQSClient) -> None:
        service = client.meta.service_model.endpoint_prefix
        events = client.meta.events
        events.register("before-parameter-build", self._remember)
        events.register("before-call", self._before_call)

        def before_send(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
            return self._before_send(service, request)

        # botocore takes what a before-send handler returns as the response; the stubs
        # type every handler as returning None.
        events.register(f"before-send.{service}", cast("Callable[..., None]", before_send))
        events.register("after-call", self._after_call)

    def wrap(self, handler: Handler) -> Handler:
        def invoke(event: Any, context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                self._settle(RECORD_ENDED)

        return invoke

    # -- before the call ------------------------------------------------------------------

    def _remember(
        self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        context[CALL] = CallRecord(model.name, dict(params))

    def _before_call(
        self, model: Any, context: dict[str, Any], params: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        call: CallRecord | None = context.get(CALL)
        if call is None:
            return None
        part = segment_read(call, self.ledger_table)
        if part and part != self.segment:
            self._settle(RECORD_ENDED)
            self.segment = part
        if call.deletes_from(self.table):
            self._maybe_kill("mid_page")
        if call.operation == BATCH and params is not None:
            self._maybe_kill("mid_page")
            return self._fail_statements(call, params)
        if self._carries_deletes(call):
            self.journal.record(CHECKPOINT_SENT, container=self.ordinal)
        return None

    def _fail_statements(self, call: CallRecord, params: dict[str, Any]) -> Any:
        """Throttle or fail single statements of a batch, as DynamoDB does in
        ``Responses[i].Error``: they are taken out of the request (they never run) and
        their errors put back in place when the answer comes."""
        rate = self.plan.throttle.get("dynamodb", 0.0) + self.plan.error_500.get("dynamodb", 0.0)
        body = json.loads(params["body"])
        statements = body["Statements"]
        call.failed = [i for i in range(len(statements)) if self.random.random() < rate]
        call.sent = [i for i in range(len(statements)) if i not in call.failed]
        for _ in call.failed:
            self.journal.record("statement_error.dynamodb", operation=BATCH)
        if not call.failed:
            return None
        if not call.sent:
            parsed = {"Responses": [statement_error(self.random) for _ in statements]}
            call.failed = []
            return ok_response(parsed), parsed
        body["Statements"] = [statements[i] for i in call.sent]
        params["body"] = json.dumps(body).encode()
        return None

    # -- each attempt ---------------------------------------------------------------------

    def _before_send(self, service: str, request: AWSPreparedRequest) -> AWSResponse | None:
        """Per attempt: throttle or fail it unsent, or send it and answer 500 anyway."""
        call: CallRecord | None = getattr(request, "context", {}).get(CALL)
        if call is None:
            return None
        draw = self.random.random()
        throttle = self.plan.throttle.get(service, 0.0)
        before = throttle + self.plan.error_500.get(service, 0.0)
        after = before + self.plan.error_500_after_send.get(service, 0.0)
        if draw < throttle:
            code = throttle_code(service, self.random)
            self.journal.record(f"throttle.{service}", operation=call.operation)
            return error_response(request, service, code, 400)
        if draw < before:
            self.journal.record(f"error_500.{service}", operation=call.operation)
            return error_response(request, service, internal_error(service), 500)
        if draw < after:
            return self._send_then_fail(service, request, call)
        return None

    def _send_then_fail(
        self, service: str, request: AWSPreparedRequest, call: CallRecord
    ) -> AWSResponse:
        real = self._http.send(request)
        _ = real.content
        self.journal.record(
            f"error_500_after_send.{service}",
            operation=call.operation,
            landed=real.status_code == 200,
        )
        if real.status_code == 200 and not call.landed:
            call.landed = call.operation != BATCH  # a batch's retry sends other statements
            self._landed(call, real.content)
        return error_response(request, service, internal_error(service), 500)

    def _landed(self, call: CallRecord, content: bytes = b"") -> None:
        """An attempt took effect though its caller sees a 500: book it now (a kill may
        come before the call returns)."""
        if call.operation == BATCH:
            # The statements that deleted: a retry finds those items gone (skipped).
            for key in batch_deletes(call, json.loads(content or b"{}")):
                self.journal.record(UNCOUNTED, cause="delete response lost", key=key)
        elif call.deletes_from(self.table):
            # Whatever follows (a retry finds the item gone and counts it as skipped,
            # or the container dies), the ledger will not count this delete.
            self.journal.record(UNCOUNTED, cause="delete response lost", key=call.deleted_key())
        elif self._carries_deletes(call):
            self.pending = 0
            self.journal.record(CHECKPOINTED, container=self.ordinal)

    def _carries_deletes(self, call: CallRecord) -> bool:
        return self.pending > 0 and is_checkpoint(call, self.ledger_table)

    # -- after the call -------------------------------------------------------------------

    def _after_call(
        self,
        http_response: Any,
        model: Any,
        context: dict[str, Any],
        parsed: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        call: CallRecord | None = context.get(CALL)
        if call is None:
            return
        ok = http_response is not None and http_response.status_code == 200
        if call.operation == BATCH and ok and parsed is not None and "Responses" in parsed:
            self._batch_answered(call, parsed)
        elif call.deletes_from(self.table):
            if ok:  # (an attempt that landed earlier would have left nothing to delete)
                self._deleted([call.deleted_key()])
        elif is_checkpoint(call, self.ledger_table):
            if ok and self.pending:
                self.pending = 0
                self.journal.record(CHECKPOINTED, container=self.ordinal)
            if ok:
                self._maybe_kill("after_checkpoint")
        elif call.operation == "SendMessage" and ok:
            self._maybe_kill("after_continuation")

    def _batch_answered(self, call: CallRecord, parsed: dict[str, Any]) -> None:
        deleted = batch_deletes(call, parsed)
        for index in call.failed:
            parsed["Responses"].insert(index, statement_error(self.random))
        call.failed, call.sent = [], []
        self._deleted(deleted)

    def _deleted(self, keys: list[list[Any]]) -> None:
        for key in keys:
            self.pending += 1
            self.journal.record(DELETED, container=self.ordinal, key=key)
        if keys:
            self._maybe_kill("after_delete")

    # -- kills and books ------------------------------------------------------------------

    def _maybe_kill(self, point: str) -> None:
        if not self.may_kill or self.random.random() >= self.plan.kill.get(point, 0.0):
            return
        self.journal.record(f"kill.{point}", container=self.ordinal)
        self._settle(f"killed {point.replace('_', ' ')}")
        self.may_kill = False
        self.die(point)

    def _settle(self, cause: str) -> None:
        if self.pending:
            self.pending = 0
            self.journal.record(SETTLED, container=self.ordinal, cause=cause)
