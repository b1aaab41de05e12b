"""The daily call ledger: counted before sending, refused at the limit, exhausted by code 22, reset at KST midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipeline.errors import QuotaError
from pipeline.load.quota import QuotaLedger, kst_day, next_kst_midnight
from pipeline.load.writer import Writer

OP = "getCtprvnRltmMesureDnsty"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_kst_day_boundaries() -> None:
    assert kst_day(datetime(2026, 11, 28, 14, 59, tzinfo=UTC)) == date(2026, 11, 28)
    assert kst_day(datetime(2026, 11, 28, 15, 0, tzinfo=UTC)) == date(2026, 11, 29)  # 00:00 KST
    assert next_kst_midnight(datetime(2026, 11, 28, 3, tzinfo=UTC)) == datetime(2026, 11, 28, 15, tzinfo=UTC)


async def test_calls_are_counted_and_refused_at_the_limit(writer: Writer) -> None:
    clock = Clock(datetime(2026, 11, 28, 3, tzinfo=UTC))
    ledger = QuotaLedger(writer, {OP: 3}, now=clock)
    for _ in range(3):
        await ledger.reserve(OP)
    with pytest.raises(QuotaError, match=r"3 of 3 calls used.*resume after 2026-11-29 00:00 KST"):
        await ledger.reserve(OP)
    [usage] = await ledger.usage()
    assert (usage.calls, usage.left, usage.exhausted) == (3, 0, False)  # the refused call was not counted
    await ledger.reserve("unlimited-operation")  # operations without a limit are not counted
    # a new KST day starts from zero
    clock.at = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    await ledger.reserve(OP)
    assert [(u.day, u.calls) for u in await ledger.usage()] == [(date(2026, 11, 29), 1)]


async def test_code_22_exhausts_the_day_for_every_process(writer: Writer) -> None:
    clock = Clock(datetime(2026, 11, 28, 3, tzinfo=UTC))
    ledger = QuotaLedger(writer, {OP: 500}, now=clock)
    await ledger.reserve(OP)
    await ledger.exhaust(OP)
    restarted = QuotaLedger(writer, {OP: 500}, now=clock)  # a restarted daemon reads the same ledger
    with pytest.raises(QuotaError, match="code 22"):
        await restarted.reserve(OP)
    assert (await restarted.usage())[0].left == 0
    clock.at += timedelta(hours=12)  # past midnight KST
    await restarted.reserve(OP)


async def test_a_plan_that_does_not_fit_is_deferred(writer: Writer) -> None:
    ledger = QuotaLedger(writer, {OP: 20}, now=Clock(datetime(2026, 11, 28, 3, tzinfo=UTC)))
    for _ in range(5):
        await ledger.reserve(OP)
    await ledger.check_plan({OP: 15})
    with pytest.raises(QuotaError, match=r"deferred: the run needs 16 .* only 15 of 20 are left"):
        await ledger.check_plan({OP: 16})
