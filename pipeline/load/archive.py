"""The raw archive: every response body the extract layer receives, compressed, stored once per content.

It lives in the database, beside what was made of it: one backup, one retention job, the same on SQLite
and PostgreSQL, and a replay can join a body with its run. ``raw_bodies`` holds each distinct body once
(SHA-256 of the bytes as received, compressed with zstd; bodies an earlier version stored with zlib are read
as they are); ``raw_responses`` one row per response, in fetch
order, with the request's path and parameters (every secret removed, by name and by value), the status, the
time and the run. A body is archived when it is read, before the classifier or the transform sees it, so it
is kept when they fail — that is when it matters.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import zstandard
from sqlalchemy import delete, exists, select
from sqlalchemy.exc import SQLAlchemyError

from pipeline.clock import wall_clock
from pipeline.config import Settings
from pipeline.errors import LoadError
from pipeline.load.statements import dialect_insert
from pipeline.load.tables import raw_bodies, raw_responses
from pipeline.load.writer import Writer
from pipeline.redaction import SECRET_PARAMS, redact

#: how new bodies are compressed (``raw_bodies.encoding``); "zlib" rows, written before 2026-12-02, still read
ENCODING = "zstd"
#: a body above this size is compressed in a thread (zstd and SHA-256 release the GIL), off the event loop
THREAD_ABOVE = 64 * 1024
#: hashes of bodies this process stored recently: a known one skips the compression
_RECENT = 4096

#: (source, operation, path, params, status, body) → archived
Receiver = Callable[[str, str, str, Mapping[str, str], int, bytes], Awaitable[None]]


def clean_params(params: Mapping[str, str]) -> str:
    """The request's parameters as JSON, without secret parameters and with any secret value masked."""
    kept = {key: value for key, value in sorted(params.items()) if key not in SECRET_PARAMS}
    return redact(json.dumps(kept, ensure_ascii=False, sort_keys=True))


#: zstd level 1: on the recorded samples and a 1 MB AirKorea series, 1,550 MB/s and 18.9 × (level 3: 1,200 MB/s
#: and 17.9 ×; zlib level 3, used before: 335 MB/s and 13.8 ×)
LEVEL = 1
_CONTEXTS = threading.local()  # a zstd context is not to be shared by threads: one each


def compress(body: bytes) -> bytes:
    """``body`` as ``raw_bodies.body`` stores it (zstd, with its size in the frame)."""
    compressor = getattr(_CONTEXTS, "compressor", None)
    if compressor is None:
        compressor = _CONTEXTS.compressor = zstandard.ZstdCompressor(level=LEVEL)
    return compressor.compress(body)


def body_hash(body: bytes) -> str:
    """``raw_bodies.hash``: SHA-256 of the body as kept, hex."""
    return hashlib.sha256(body).hexdigest()


def decompress(encoding: str, stored: bytes) -> bytes:
    """A stored body as received, whichever encoding this or an earlier version stored it with."""
    try:
        if encoding == "zstd":
            decompressor = getattr(_CONTEXTS, "decompressor", None)
            if decompressor is None:
                decompressor = _CONTEXTS.decompressor = zstandard.ZstdDecompressor()
            return decompressor.decompress(stored)
        if encoding == "zlib":
            return zlib.decompress(stored)
    except (zstandard.ZstdError, zlib.error) as exc:
        raise LoadError(f"raw_bodies: a {encoding} body does not decompress ({exc})") from None
    raise LoadError(f"raw_bodies: unknown encoding {encoding!r}")


class Archive:
    """Writes responses to the archive through the process's writer."""

    def __init__(self, writer: Writer, *, max_error_bytes: int, now: Callable[[], datetime] = wall_clock) -> None:
        self.writer = writer
        self.max_error_bytes = max_error_bytes
        self.now = now
        self._stored: OrderedDict[str, None] = OrderedDict()

    def receiver(self, run_id: int | None) -> Receiver:
        """The extract layer's hook for one run's clients (``SourceClient.after_receive``)."""

        async def receive(
            source: str, operation: str, path: str, params: Mapping[str, str], status: int, body: bytes
        ) -> None:
            await self.record(run_id, source, operation, path, params, status, body)

        return receive

    async def record(
        self,
        run_id: int | None,
        source: str,
        operation: str,
        path: str,
        params: Mapping[str, str],
        status: int,
        body: bytes,
    ) -> str:
        """Archive one response; returns its body's hash."""
        truncated = status != 200 and len(body) > self.max_error_bytes
        if truncated:
            body = body[: self.max_error_bytes]
        large = len(body) > THREAD_ABOVE
        digest = await asyncio.to_thread(body_hash, body) if large else body_hash(body)
        now = self.now()
        stored: bytes | None = None
        if digest not in self._stored:
            stored = await asyncio.to_thread(compress, body) if large else compress(body)
        response = {
            "run_id": run_id,
            "source": source,
            "operation": operation,
            "path": redact(path),
            "params": clean_params(params),
            "status": status,
            "truncated": truncated,
            "body_hash": digest,
            "fetched_at": now,
        }
        try:
            async with self.writer.transaction() as conn:
                if stored is not None:
                    row = {
                        "hash": digest,
                        "encoding": ENCODING,
                        "size": len(body),
                        "stored_size": len(stored),
                        "body": stored,
                        "first_seen_at": now,
                    }
                    insert = dialect_insert(self.writer.dialect, raw_bodies).on_conflict_do_nothing(
                        index_elements=["hash"]
                    )
                    await conn.execute(insert, [row])
                await conn.execute(raw_responses.insert(), [response])
        except SQLAlchemyError as exc:
            raise LoadError(redact(f"writing the raw archive failed: {exc}").splitlines()[0]) from None
        self._stored[digest] = None
        self._stored.move_to_end(digest)
        if len(self._stored) > _RECENT:
            self._stored.popitem(last=False)
        return digest


def receiver_for(settings: Settings, writer: Writer, run_id: int | None) -> Receiver | None:
    """The hook a run's clients archive through (``None`` when ``archive.enabled`` is false)."""
    if not settings.archive.enabled:
        return None
    return Archive(writer, max_error_bytes=settings.archive.max_error_bytes).receiver(run_id)


@dataclass(frozen=True, slots=True)
class Pruned:
    responses: int
    bodies: int


async def prune(writer: Writer, keep: timedelta, now: datetime) -> Pruned:
    """Delete responses fetched more than ``keep`` ago, then the bodies no response refers to any more."""
    cutoff = now - keep
    try:
        async with writer.transaction() as conn:
            responses = (await conn.execute(delete(raw_responses).where(raw_responses.c.fetched_at < cutoff))).rowcount
            orphan = ~exists().where(raw_responses.c.body_hash == raw_bodies.c.hash)
            bodies = (await conn.execute(delete(raw_bodies).where(orphan))).rowcount
    except SQLAlchemyError as exc:
        raise LoadError(redact(f"pruning the raw archive failed: {exc}").splitlines()[0]) from None
    return Pruned(responses or 0, bodies or 0)


async def body_of(writer: Writer, digest: str) -> bytes:
    """A body as received (decompressed)."""
    async with writer.engine.connect() as conn:
        row = (
            await conn.execute(select(raw_bodies.c.encoding, raw_bodies.c.body).where(raw_bodies.c.hash == digest))
        ).one()
    return decompress(row.encoding, row.body)
