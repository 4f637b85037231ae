import reliability.plugin  # noqa: F401

# isort: split
# Template: PostgreSQL queries through a shared pool (copy and edit).
#   RELIABILITY_PG_DSN=postgresql://user:pass@127.0.0.1:5432/db locust -f locustfiles/db.py --headless -u 20 -t 2m
# The table is created if missing; RELIABILITY_PG_TABLE names it, RELIABILITY_PG_POOL_SIZE sizes the pool.
import os
import random

from locust import between, task

from reliability.users.postgres import PostgresUser

TABLE = os.environ.get("RELIABILITY_PG_TABLE", "reliability_items")
if not TABLE.isidentifier():
    raise ValueError(f"RELIABILITY_PG_TABLE must be a plain SQL identifier, got {TABLE!r}")

# One transaction holding an advisory lock: concurrent CREATE TABLE IF NOT EXISTS from many users
# or workers can otherwise fail on a unique violation in the catalog.
CREATE_TABLE = f"""
DO $$ BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('{TABLE}'));
    CREATE TABLE IF NOT EXISTS {TABLE} (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        value double precision NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
END $$
"""


class DbUser(PostgresUser):
    """Inserts, point reads, recent-rows scans, updates and an aggregate on one table."""

    wait_time = between(0.05, 0.2)
    pool_size = int(os.environ.get("RELIABILITY_PG_POOL_SIZE", "10"))
    table_ready = False  # per class and process: created once, retried until it works

    def on_start(self) -> None:
        super().on_start()
        self.ids: list[int] = []
        self.ensure_table()

    def ensure_table(self) -> bool:
        if not DbUser.table_ready:
            DbUser.table_ready = self.query("create table", CREATE_TABLE, fetch=False) is not None
        return DbUser.table_ready

    @task(2)
    def insert(self) -> None:
        if not self.ensure_table():
            return
        rows = self.query("insert", f"INSERT INTO {TABLE} (name, value) VALUES (%s, %s) RETURNING id",
                          (f"row-{random.randrange(1_000_000)}", random.random()))
        if rows:
            self.ids = [*self.ids[-99:], rows[0][0]]

    @task(6)
    def select_by_id(self) -> None:
        if self.ids:
            self.query("select by id", f"SELECT id, name, value FROM {TABLE} WHERE id = %s",
                       (random.choice(self.ids),))

    @task(3)
    def select_recent(self) -> None:
        self.query("select recent", f"SELECT id, name, value FROM {TABLE} ORDER BY id DESC LIMIT 20")

    @task(1)
    def update(self) -> None:
        if self.ids:
            self.query("update", f"UPDATE {TABLE} SET value = value + 1 WHERE id = %s",
                       (random.choice(self.ids),), fetch=False)

    @task(1)
    def aggregate(self) -> None:
        self.query("aggregate", f"SELECT count(*), avg(value) FROM {TABLE}")
