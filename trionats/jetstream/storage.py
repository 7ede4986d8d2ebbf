"""Keeping streams on disk: one SQLite database per stream (WAL mode), written by one worker
thread, so the event loop never waits on disk.

A stream holds its messages in memory (stream.py) and writes each change through to its
database: the worker owns every SQLite connection, takes jobs from a queue, runs all the
jobs waiting at once in one transaction per database (a group commit), commits, and hands
the jobs' callbacks back to the Trio loop (`run_sync_soon`), where the publish
acknowledgements go out. An acknowledged message is therefore in the WAL file, in the
operating system's hands: it survives a crash of the process (SIGKILL). Forcing it to the
disk itself (fsync) is the `sync_interval` rule, as in nats-server: a checkpoint every
interval, or with `sync_interval: always` every commit (`synchronous=FULL`).

Layout: `<store_dir>/jetstream/<account>/streams/<stream>/stream.db`, as nats-server's
directories, with the tables `meta` (the configuration, creation time, first sequence),
`msgs` and `consumers`.
"""

from __future__ import annotations

import json
import queue
import shutil
import sqlite3
import threading
from pathlib import Path

import trio

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS msgs (seq INTEGER PRIMARY KEY, subject TEXT NOT NULL,
                                 hdr BLOB, data BLOB NOT NULL, ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS consumers (name TEXT PRIMARY KEY, config TEXT NOT NULL,
                                      state TEXT NOT NULL);
"""

#: Jobs run in one transaction per database at most (bounds one commit's latency).
MAX_GROUP = 4096


class StreamDB:
    """One stream's database. Every method that touches it runs in the worker thread."""

    def __init__(self, directory: Path, *, sync_always: bool) -> None:
        self.directory = directory
        self.sync_always = sync_always
        self.conn: sqlite3.Connection | None = None
        self.dropped = False

    def open(self) -> sqlite3.Connection:
        if self.conn is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.directory / "stream.db", isolation_level=None,
                                   check_same_thread=False)  # fmt: skip
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self.sync_always else 'NORMAL'}")
            conn.executescript(_SCHEMA)
            self.conn = conn
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # --- operations (worker thread) ----------------------------------------------------

    def put_meta(self, conn, key: str, value) -> None:
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def insert(self, conn, seq: int, subject: str, hdr: bytes, data: bytes, ts: int) -> None:
        conn.execute("INSERT OR REPLACE INTO msgs VALUES (?, ?, ?, ?, ?)",
                     (seq, subject, hdr or None, data, ts))  # fmt: skip

    def delete(self, conn, seqs: list[int]) -> None:
        conn.executemany("DELETE FROM msgs WHERE seq = ?", [(seq,) for seq in seqs])

    def delete_below(self, conn, seq: int) -> None:
        conn.execute("DELETE FROM msgs WHERE seq < ?", (seq,))

    def put_consumer(self, conn, name: str, config: dict, state: dict) -> None:
        conn.execute("INSERT OR REPLACE INTO consumers VALUES (?, ?, ?)",
                     (name, json.dumps(config), json.dumps(state)))  # fmt: skip

    def delete_consumer(self, conn, name: str) -> None:
        conn.execute("DELETE FROM consumers WHERE name = ?", (name,))

    def load(self) -> dict:
        """Everything stored: meta, messages in order, consumers."""
        conn = self.open()
        meta = {key: json.loads(value) for key, value in conn.execute("SELECT key, value FROM meta")}
        msgs = conn.execute("SELECT seq, subject, hdr, data, ts FROM msgs ORDER BY seq").fetchall()
        consumers = [(name, json.loads(config), json.loads(state)) for name, config, state
                     in conn.execute("SELECT name, config, state FROM consumers")]  # fmt: skip
        return {"meta": meta, "msgs": msgs, "consumers": consumers}

    def drop(self) -> None:
        self.close()
        self.dropped = True
        shutil.rmtree(self.directory, ignore_errors=True)


class StoreWorker:
    """The thread that owns the databases. `submit` queues a job (a function of the
    connection) and the callback to run on the Trio loop once it is committed, given None
    or the error."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="trionats-jetstream-store",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        #: Jobs queued and not yet committed (a figure for tests and /jsz).
        self.pending = 0

    def submit(self, db: StreamDB, job, done=None) -> None:
        self.pending += 1
        self._jobs.put((db, job, done))

    async def call(self, function):
        """Run `function()` in the worker (loading, dropping) and wait for its result."""
        result: list = []
        finished = trio.Event()

        def job(_conn):
            result.append(function())

        def done(error):
            result.append(error)
            finished.set()

        self._jobs.put((None, job, done))
        self.pending += 1
        await finished.wait()
        if result[-1] is not None:
            raise result[-1]
        return result[0]

    async def aclose(self) -> None:
        """Finish every queued job, then stop the thread."""
        self._jobs.put(None)
        await trio.to_thread.run_sync(self._thread.join)

    # --- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        open_dbs: set[StreamDB] = set()
        stopping = False
        while not stopping:
            first = self._jobs.get()
            batch = [first]
            while len(batch) < MAX_GROUP:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                stopping = True
                batch = batch[: batch.index(None)]  # (nothing is queued after the stop)
            results = self._commit(batch, open_dbs)
            try:
                self._token.run_sync_soon(self._finished, results)
            except trio.RunFinishedError:
                return
        for db in open_dbs:
            db.close()

    def _commit(self, batch: list, open_dbs: set) -> list:
        """Run a batch: one transaction per database, in the order the jobs came."""
        results = []
        groups: dict = {}
        for db, job, done in batch:
            groups.setdefault(db, []).append((job, done))
        for db, jobs in groups.items():
            error = None
            if db is not None and db.dropped:  # (its directory is gone: nothing to write)
                results.extend((done, None) for _, done in jobs)
                continue
            if db is None:  # plain calls: each on its own
                for job, done in jobs:
                    try:
                        job(None)
                        results.append((done, None))
                    except Exception as exc:  # handed to the caller on the loop
                        results.append((done, exc))
                continue
            try:
                conn = db.open()
                open_dbs.add(db)
                conn.execute("BEGIN")
                for job, _ in jobs:
                    job(conn)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                error = exc
                try:
                    db.conn.execute("ROLLBACK")
                except (sqlite3.Error, AttributeError):
                    pass
            results.extend((done, error) for _, done in jobs)
        return results

    def _finished(self, results: list) -> None:
        self.pending -= len(results)
        for done, error in results:
            if done is not None:
                done(error)

    def checkpoint(self, dbs) -> None:
        """Force what was committed to disk (the `sync_interval` tick)."""
        for db in dbs:
            self.submit(None, lambda _conn, db=db: db.conn and db.conn.execute(
                "PRAGMA wal_checkpoint(PASSIVE)"))  # fmt: skip
