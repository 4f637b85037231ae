"""The PostgreSQL items store: psycopg 3 async with an AsyncConnectionPool.

Every call is bounded twice by the database timeout: ``asyncio.timeout`` so the request returns,
and ``statement_timeout`` on each pooled connection so the server stops working on it too (a
cancelled client would otherwise leave a query holding locks and a backend busy).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from reliability.masking import mask
from reliability.target.store import SEED_NAME_PREFIX, Item, ItemReport, PoolUsage, StoreError, StoreTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")
# Pooled connections build an Item from each row (by column name); other results use their own cursor.
Connection = psycopg.AsyncConnection[Item]
Params = tuple[str | int | float, ...]

SCHEMA_LOCK_KEY = 0x7E1AB1E  # advisory lock so several targets starting at once create the table once
CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS items (
    id serial PRIMARY KEY,
    name text NOT NULL,
    value double precision NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
SEED = """
INSERT INTO items (name, value)
SELECT %s || g, g::double precision FROM generate_series(1, %s) AS g
WHERE NOT EXISTS (SELECT 1 FROM items)
"""
COLUMNS = "id, name, value, created_at"
STARTUP_SCHEMA_TIMEOUT_S = 5.0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class PostgresStore:
    """Items in PostgreSQL; the table is created (and seeded when empty) on first use.

    Example::

        store = PostgresStore("postgresql://app@localhost/app", timeout_s=0.5)
        await store.open()
        items = await store.list_items(10)
        await store.close()
    """

    def __init__(
        self,
        dsn: str,
        timeout_s: float,
        seed_items: int = 300,
        min_size: int = 2,
        max_size: int = 10,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.description = f"postgresql {mask(dsn)}"
        self._timeout_s = timeout_s
        self._seed_items = seed_items
        self._secrets = secrets
        self._schema_ready = False
        self._pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            dsn,
            connection_class=Connection,
            open=False,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            name="reliability-target",
            kwargs={"autocommit": True, "application_name": "reliability-target", "row_factory": class_row(Item)},
            configure=self._configure,
        )

    async def _configure(self, conn: Connection) -> None:
        # A session setting rather than a DSN "options" argument, which would replace the user's own.
        timeout = str(max(1, round(self._timeout_s * 1000)))
        await conn.execute("SELECT set_config('statement_timeout', %s, false)", (timeout,))

    async def open(self) -> None:
        await self._pool.open(wait=False)
        try:
            async with asyncio.timeout(STARTUP_SCHEMA_TIMEOUT_S):
                async with self._pool.connection(timeout=STARTUP_SCHEMA_TIMEOUT_S) as conn:
                    await self._ensure_schema(conn)
        except (TimeoutError, psycopg.Error) as exc:
            # Keep serving: /health reports the database down, and the schema is retried on use.
            log.warning("database not ready at startup (%s); will retry on use", self._describe(exc))

    async def close(self) -> None:
        await self._pool.close(timeout=5.0)

    def pool_usage(self) -> PoolUsage:
        stats = self._pool.get_stats()
        size = stats.get("pool_size", 0)
        return PoolUsage(in_use=max(0, size - stats.get("pool_available", 0)), size=size)

    def _describe(self, exc: BaseException) -> str:
        return mask(_one_line(exc), self._secrets)

    async def _ensure_schema(self, conn: Connection) -> None:
        if self._schema_ready:
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            await conn.execute(CREATE_TABLE)
            await conn.execute(SEED, (SEED_NAME_PREFIX, self._seed_items))
        self._schema_ready = True

    async def _run(
        self,
        work: Callable[[Connection], Awaitable[T]],
        timeout_s: float | None = None,
    ) -> T:
        timeout_s = self._timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(timeout_s), self._pool.connection(timeout=timeout_s) as conn:
                await self._ensure_schema(conn)
                return await work(conn)
        except (TimeoutError, PoolTimeout, psycopg.errors.QueryCanceled) as exc:
            raise StoreTimeout(f"database timeout after {timeout_s * 1000:.0f} ms") from exc
        except psycopg.Error as exc:
            raise StoreError(self._describe(exc)) from exc

    async def _item_or_none(self, query: str, params: Params) -> Item | None:
        async def work(conn: Connection) -> Item | None:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

        return await self._run(work)

    async def ping(self, timeout_s: float) -> None:
        async def work(conn: Connection) -> None:
            await conn.execute("SELECT 1")

        await self._run(work, timeout_s)

    async def list_items(self, limit: int) -> list[Item]:
        async def work(conn: Connection) -> list[Item]:
            cur = await conn.execute(f"SELECT {COLUMNS} FROM items ORDER BY id DESC LIMIT %s", (limit,))
            return await cur.fetchall()

        return await self._run(work)

    async def get_item(self, item_id: int) -> Item | None:
        return await self._item_or_none(f"SELECT {COLUMNS} FROM items WHERE id = %s", (item_id,))

    async def create_item(self, name: str, value: float) -> Item:
        query = f"INSERT INTO items (name, value) VALUES (%s, %s) RETURNING {COLUMNS}"
        item = await self._item_or_none(query, (name, value))
        if item is None:  # INSERT ... RETURNING always yields a row; this guards the type only
            raise StoreError("insert returned no row")
        return item

    async def update_item(self, item_id: int, name: str, value: float) -> Item | None:
        query = f"UPDATE items SET name = %s, value = %s WHERE id = %s RETURNING {COLUMNS}"
        return await self._item_or_none(query, (name, value, item_id))

    async def delete_item(self, item_id: int) -> bool:
        async def work(conn: Connection) -> bool:
            cur = await conn.execute("DELETE FROM items WHERE id = %s", (item_id,))
            return cur.rowcount > 0

        return await self._run(work)

    async def report(self) -> ItemReport:
        async def work(conn: Connection) -> ItemReport | None:
            async with conn.cursor(row_factory=class_row(ItemReport)) as cur:
                await cur.execute(
                    "SELECT count(*) AS count, coalesce(sum(value), 0) AS total_value, avg(value) AS avg_value, "
                    "min(value) AS min_value, max(value) AS max_value FROM items")
                return await cur.fetchone()

        report = await self._run(work)
        if report is None:
            raise StoreError("aggregate returned no row")
        return report
