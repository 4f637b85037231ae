"""The items store: the :class:`ItemStore` protocol, its errors, and the embedded in-memory store.

The PostgreSQL implementation lives in :mod:`reliability.target.pgstore`; both answer the same
calls, so the HTTP layer, the breaker and the cache never know which one is behind them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass
from typing import Protocol, TypedDict

from reliability.exceptions import TargetError

# ``items.id`` is a PostgreSQL ``serial`` (int4): a larger id is a 404, never a query that fails
# and counts against the breaker.
MAX_ITEM_ID = 2**31 - 1


class StoreError(TargetError):
    """The store could not answer (connection lost, query failed); counts against the breaker."""


class StoreTimeout(StoreError):
    """The store did not answer within the database timeout."""


class ItemJson(TypedDict):
    id: int
    name: str
    value: float
    created_at: str  # ISO 8601


class ReportJson(TypedDict):
    """``GET /api/report``'s body."""

    count: int
    sum: float
    avg: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True)
class Item:
    """One row of ``items``.

    Example::

        Item(id=1, name="item-1", value=1.0, created_at=dt.datetime.now(dt.UTC)).to_json()
    """

    id: int
    name: str
    value: float
    created_at: dt.datetime

    def to_dict(self) -> ItemJson:
        return {"id": self.id, "name": self.name, "value": self.value, "created_at": self.created_at.isoformat()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


@dataclass(frozen=True)
class ItemReport:
    """The aggregate over all items that ``GET /api/report`` returns."""

    count: int
    total_value: float
    avg_value: float | None
    min_value: float | None
    max_value: float | None

    def to_dict(self) -> ReportJson:
        return {
            "count": self.count,
            "sum": self.total_value,
            "avg": self.avg_value,
            "min": self.min_value,
            "max": self.max_value,
        }


@dataclass(frozen=True)
class PoolUsage:
    """Connections in use and open; both 0 for the embedded store."""

    in_use: int
    size: int


class ItemStore(Protocol):
    """What the HTTP layer needs from a store. Every call may raise :class:`StoreError`."""

    description: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self, timeout_s: float) -> None: ...
    async def list_items(self, limit: int) -> list[Item]: ...
    async def get_item(self, item_id: int) -> Item | None: ...
    async def create_item(self, name: str, value: float) -> Item: ...
    async def update_item(self, item_id: int, name: str, value: float) -> Item | None: ...
    async def delete_item(self, item_id: int) -> bool: ...
    async def report(self) -> ItemReport: ...
    def pool_usage(self) -> PoolUsage: ...


SEED_NAME_PREFIX = "item-"


def seed_row(index: int) -> tuple[str, float]:
    """Name and value of the ``index``-th seeded item (1-based), the same for every store."""
    return f"{SEED_NAME_PREFIX}{index}", float(index)


class MemoryStore:
    """The embedded store: a dict, seeded with ``seed_items`` rows so reads hit from the start.

    Example::

        store = MemoryStore(seed_items=300)
        await store.open()
        item = await store.get_item(1)     # Item(id=1, name="item-1", value=1.0, ...)
    """

    description = "embedded in-memory store"

    def __init__(self, seed_items: int = 300) -> None:
        self._seed_items = seed_items
        self._items: dict[int, Item] = {}
        self._next_id = 1

    async def open(self) -> None:
        if not self._items:
            for index in range(1, self._seed_items + 1):
                await self.create_item(*seed_row(index))

    async def close(self) -> None:
        return None

    async def ping(self, timeout_s: float) -> None:
        return None

    async def list_items(self, limit: int) -> list[Item]:
        # Ids only grow and updates keep their slot, so reverse insertion order is newest first.
        return [self._items[i] for i in itertools.islice(reversed(self._items), limit)]

    async def get_item(self, item_id: int) -> Item | None:
        return self._items.get(item_id)

    async def create_item(self, name: str, value: float) -> Item:
        item = Item(self._next_id, name, value, dt.datetime.now(dt.UTC))
        self._items[item.id] = item
        self._next_id += 1
        return item

    async def update_item(self, item_id: int, name: str, value: float) -> Item | None:
        old = self._items.get(item_id)
        if old is None:
            return None
        new = Item(item_id, name, value, old.created_at)
        self._items[item_id] = new
        return new

    async def delete_item(self, item_id: int) -> bool:
        return self._items.pop(item_id, None) is not None

    async def report(self) -> ItemReport:
        values = [item.value for item in self._items.values()]
        if not values:
            return ItemReport(0, 0.0, None, None, None)
        total = sum(values)
        return ItemReport(len(values), total, total / len(values), min(values), max(values))

    def pool_usage(self) -> PoolUsage:
        return PoolUsage(0, 0)
