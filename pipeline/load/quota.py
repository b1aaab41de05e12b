"""The daily call ledger of data.go.kr operations (500 calls per operation per KST day on a development key).

Every call is counted in the database *before* it is sent, in one short write transaction that also reads the
new total: a call that would exceed the quota is rolled back and refused, so no process — the daemon, a
backfill, a one-off run, a restarted daemon — can exceed it together with the others. When the API itself
answers code 22, the operation is marked exhausted for the rest of the KST day.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.sql.expression import Executable

from pipeline.errors import QuotaError
from pipeline.load.statements import dialect_insert
from pipeline.load.tables import api_calls
from pipeline.load.writer import Writer
from pipeline.transform.common import KST


def kst_day(at: datetime) -> date:
    return at.astimezone(KST).date()


def next_kst_midnight(at: datetime) -> datetime:
    return datetime.combine(kst_day(at) + timedelta(days=1), time(0), tzinfo=KST)


@dataclass(frozen=True, slots=True)
class Usage:
    operation: str
    day: date
    calls: int
    limit: int
    exhausted: bool

    @property
    def left(self) -> int:
        return 0 if self.exhausted else max(0, self.limit - self.calls)


class _Refused(Exception):
    pass


class QuotaLedger:
    """Counts and limits calls per operation per KST day. ``now`` is injectable for tests."""

    def __init__(
        self,
        writer: Writer,
        limits: Mapping[str, int],
        *,
        source: str = "airkorea",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.writer = writer
        self.limits = dict(limits)
        self.source = source
        self.now = now
        self._reserve: tuple[Executable, Executable] | None = None

    def _statements(self) -> tuple[Executable, Executable]:
        """The counting upsert and the read of the new total, built once (building them cost more than
        running them: a backfill reserves one call per station)."""
        if self._reserve is None:
            ins = dialect_insert(self.writer.dialect, api_calls)
            count = ins.values(
                operation=bindparam("operation", type_=api_calls.c.operation.type),
                kst_date=bindparam("day", type_=api_calls.c.kst_date.type),
                calls=1,
                updated_at=bindparam("now", type_=api_calls.c.updated_at.type),
            ).on_conflict_do_update(
                index_elements=["operation", "kst_date"],
                set_={"calls": api_calls.c.calls + 1, "updated_at": ins.excluded.updated_at},
            )
            read = select(api_calls.c.calls, api_calls.c.exhausted_at).where(
                (api_calls.c.operation == bindparam("operation")) & (api_calls.c.kst_date == bindparam("day"))
            )
            self._reserve = (count, read)
        return self._reserve

    def _refusal(self, operation: str, usage: Usage) -> QuotaError:
        resume = next_kst_midnight(self.now())
        why = (
            "the API answered code 22 (quota exceeded)"
            if usage.exhausted
            else f"{usage.calls} of {usage.limit} calls used"
        )
        return QuotaError(
            f"{self.source}: daily quota for {operation} used up on {usage.day} KST ({why}); "
            f"calls resume after {resume:%Y-%m-%d %H:%M} KST",
            source=self.source,
            operation=operation,
            code="22" if usage.exhausted else None,
        )

    async def reserve(self, operation: str) -> None:
        """Count one call of ``operation``; raise :class:`QuotaError` (nothing counted) when none is left."""
        limit = self.limits.get(operation)
        if limit is None:
            return
        now = self.now()
        day = kst_day(now)
        count, read = self._statements()
        params = {"operation": operation, "day": day, "now": now}
        try:
            async with self.writer.transaction() as conn:
                # write first: the transaction holds the write lock before it reads (no stale-snapshot upgrade)
                await conn.execute(count, params)
                row = (await conn.execute(read, params)).one()
                usage = Usage(operation, day, row.calls - 1, limit, row.exhausted_at is not None)
                if usage.exhausted or usage.calls >= limit:
                    raise _Refused
        except _Refused:
            raise self._refusal(operation, usage) from None

    async def exhaust(self, operation: str) -> None:
        """The API said the quota is used up: no more calls of ``operation`` until midnight KST."""
        now = self.now()
        ins = dialect_insert(self.writer.dialect, api_calls)
        stmt = ins.values(
            operation=operation, kst_date=kst_day(now), calls=0, exhausted_at=now, updated_at=now
        ).on_conflict_do_update(
            index_elements=["operation", "kst_date"],
            set_={"exhausted_at": ins.excluded.exhausted_at, "updated_at": ins.excluded.updated_at},
        )
        async with self.writer.transaction() as conn:
            await conn.execute(stmt)

    async def usage(self) -> list[Usage]:
        """Today's use of every limited operation."""
        day = kst_day(self.now())
        async with self.writer.engine.connect() as conn:
            rows = (await conn.execute(select(api_calls).where(api_calls.c.kst_date == day))).mappings().all()
        found = {row["operation"]: row for row in rows}
        result = []
        for operation, limit in sorted(self.limits.items()):
            row = found.get(operation)
            calls = int(row["calls"]) if row else 0
            result.append(Usage(operation, day, calls, limit, bool(row and row["exhausted_at"] is not None)))
        return result

    async def check_plan(self, planned: Mapping[str, int]) -> None:
        """Refuse a run whose planned calls do not fit in what is left today (it is deferred, not started)."""
        left = {u.operation: u for u in await self.usage()}
        for operation, calls in planned.items():
            usage = left.get(operation)
            if usage is None or calls <= usage.left:
                continue
            resume = next_kst_midnight(self.now())
            raise QuotaError(
                f"{self.source}: deferred: the run needs {calls} {operation} calls but only {usage.left} of "
                f"{usage.limit} are left today ({usage.day} KST); it can run after {resume:%Y-%m-%d %H:%M} KST",
                source=self.source,
                operation=operation,
            )
