"""The audit log on disk: entries, checkpoints, and where each stream was read up to.

SQLite under the data directory (`state/audit.db`) by default, PostgreSQL by the
mission's storage URL. Appends are idempotent per source (stream and sequence), and
the read position of each stream is committed with the entries it produced, so a
crash at any point neither loses nor repeats an entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, func, insert, or_, select, update

from deskgate.audit import merkle
from deskgate.audit.chain import GENESIS, Checkpoint, Entry, Report, leaf, new_row, verify_log
from deskgate.audit.keys import KeyStore, public_to_text
from deskgate.audit.signing import Kind, Signer
from deskgate.store_lease import StoreLease, fence, lease_columns
from deskgate.store_lease import epoch as lease_epoch
from deskgate.migrations import open_store

EXPORT_FORMAT = "deskgate-audit/2"  # /1 had no header signature

metadata = MetaData()
entries = Table(
    "audit_entries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("subject", Text, nullable=False),
    Column("ref", String(128), nullable=True, index=True),
    Column("source", String(128), nullable=False, unique=True),
    Column("recorded_at", String(40), nullable=False),  # ISO 8601 exactly as hashed
    Column("signer", String(80), nullable=True),
    Column("signature", String(200), nullable=True),
    Column("status", String(24), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("size", Integer, primary_key=True, autoincrement=False),
    Column("root", String(64), nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Column("signer", String(80), nullable=False),
    Column("signature", String(200), nullable=False),
)
cursors = Table(
    "audit_cursors",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("seq", Integer, nullable=False),
)
# The audit service's lease and fence (store_lease.py; migrations/versions/audit_0002_fence.py).
# Kept out of `metadata`: it is the schema's own, made by its revision, never adopted from the
# factory's old schema nor carried from a file (a file never held a standby's lease).
fence_metadata = MetaData()
fence_row = Table("audit_fence", fence_metadata, *lease_columns())
FENCE = "audit"


@dataclass(frozen=True)
class Record:
    """One message to append, as read from its stream."""

    kind: str
    subject: str
    ref: str | None
    source: str
    signer: str | None
    signature: str | None
    status: str
    payload: str


def _entry(row) -> Entry:
    return Entry.model_validate(dict(row._mapping))


def _checkpoint(row) -> Checkpoint:
    return Checkpoint.model_validate(dict(row._mapping))


class AuditLog:
    def __init__(self, url: str, keys: KeyStore, *, checkpoint_every: int = 1000, legacy_sqlite=None):
        """`legacy_sqlite`: with a PostgreSQL `url`, the desk's audit.db, carried in once (the chain goes on)."""
        self.engine = open_store(url, "audit", adopt_tables=metadata.tables, legacy_sqlite=legacy_sqlite,
                                 legacy_tables=metadata.tables.values())
        self.keys = keys
        self.checkpoint_every = checkpoint_every
        self._signer: Signer | None = None
        self.load()

    #: The lease this instance appends under (store_lease.py), or None without standbys.
    lease: StoreLease | None = None

    def load(self) -> None:
        """The chain's head, size and Merkle tree, as the store holds them now."""
        self.tree = merkle.Tree()
        self.size = 0
        self.head = GENESIS
        with self.engine.connect() as conn:
            for (h,) in conn.execute(select(entries.c.hash).order_by(entries.c.seq)):
                self.tree.append(leaf(h))
                self.head = h
                self.size += 1
            self.last_checkpoint = conn.execute(select(func.max(checkpoints.c.size))).scalar() or 0

    @classmethod
    def open(cls, data_dir, url: str | None = None, **kw) -> AuditLog:
        url = url or data_dir.store_url("audit")
        legacy = None if url.startswith("sqlite") else data_dir.audit_db
        return cls(url, KeyStore.for_desk(data_dir), legacy_sqlite=legacy, **kw)

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = Signer(self.keys, "audit")
        return self._signer

    def close(self) -> None:
        self.engine.dispose()

    # -- writing -------------------------------------------------------------------

    @contextmanager
    def _begin(self):
        """A writing transaction, fenced by the lease: an audit service that lost its lease is
        refused before it appends, so the chain never forks. Without standbys it writes while no
        standby has ever held the lease."""
        with self.engine.begin() as conn:
            fence(conn, fence_row, FENCE, self.lease, "the audit log")
            yield conn

    def new_lease(self, holder: str) -> StoreLease:
        return StoreLease(self.engine, fence_row, FENCE, "audit", holder)

    def take_over(self, lease: StoreLease) -> None:
        """Append from now on as `lease`'s holder, after whatever the last holder appended: its
        appends ended when the lease was taken, so the chain read here is the whole of it."""
        self.lease = lease
        with self._begin():
            pass
        self.load()

    def fence_epoch(self) -> int:
        return lease_epoch(self.engine, fence_row, FENCE)

    def cursor(self, name: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(cursors.c.seq).where(cursors.c.name == name)).scalar() or 0

    def append(self, records: list[Record], at: datetime, *, cursor: tuple[str, int] | None = None) -> int:
        """Append records (skipping any source already logged) and move a stream's cursor,
        in one transaction; sign a checkpoint every `checkpoint_every` entries."""
        added = 0
        before = (self.tree.copy(), self.size, self.head, self.last_checkpoint)
        try:
            with self._begin() as conn:
                if records:
                    sources = [r.source for r in records]
                    seen = set(conn.execute(select(entries.c.source).where(entries.c.source.in_(sources))).scalars())
                    rows = []
                    for r in records:
                        if r.source in seen:
                            continue
                        seen.add(r.source)
                        row = new_row(
                            self.size + 1, self.head, kind=r.kind, subject=r.subject, ref=r.ref, source=r.source,
                            recorded_at=at, signer=r.signer, signature=r.signature, status=r.status, payload=r.payload,
                        )
                        rows.append(row)
                        self.tree.append(leaf(row["hash"]))
                        self.size, self.head = row["seq"], row["hash"]
                        added += 1
                        if self.size % self.checkpoint_every == 0:  # every boundary, whatever idle checkpoints came between
                            self._write_checkpoint(conn, at)
                    if rows:
                        conn.execute(insert(entries), rows)
                if cursor is not None:
                    name, seq = cursor
                    if conn.execute(update(cursors).where(cursors.c.name == name).values(seq=seq)).rowcount == 0:
                        conn.execute(insert(cursors).values(name=name, seq=seq))
        except BaseException:
            # Nothing was committed: forget what this call added in memory.
            self.tree, self.size, self.head, self.last_checkpoint = before
            raise
        return added

    def _write_checkpoint(self, conn, at: datetime) -> Checkpoint | None:
        if conn.execute(select(checkpoints.c.size).where(checkpoints.c.size == self.size)).first():
            self.last_checkpoint = self.size  # already signed at this size
            return None
        cp = Checkpoint(size=self.size, root=self.tree.head().hex(), head_hash=self.head, at=at)
        cp = cp.model_copy(update={"signature": self.signer.sign(Kind.CHECKPOINT, cp.body())})
        conn.execute(insert(checkpoints).values(**cp.model_dump(mode="json")))
        self.last_checkpoint = self.size
        return cp

    def checkpoint(self, at: datetime) -> Checkpoint | None:
        """Sign a checkpoint at the current size, if anything was appended since the last."""
        if self.size == 0 or self.size == self.last_checkpoint:
            return None
        last = self.last_checkpoint
        try:
            with self._begin() as conn:
                return self._write_checkpoint(conn, at)
        except BaseException:
            self.last_checkpoint = last
            raise

    # -- reading -------------------------------------------------------------------

    def entries(self, batch: int = 5000, upto: int | None = None) -> Iterator[Entry]:
        after = 0
        while True:
            q = select(entries).where(entries.c.seq > after)
            if upto is not None:
                q = q.where(entries.c.seq <= upto)
            with self.engine.connect() as conn:
                result = conn.execute(q.order_by(entries.c.seq).limit(batch))
                names, rows = tuple(result.keys()), result.all()
            if not rows:
                return
            for row in rows:
                # Zipped with the column names: a third of the cost of `row._mapping` (it shows when verifying).
                yield Entry.model_validate(dict(zip(names, row)))
            after = rows[-1].seq

    def checkpoints(self) -> list[Checkpoint]:
        with self.engine.connect() as conn:
            return [_checkpoint(r) for r in conn.execute(select(checkpoints).order_by(checkpoints.c.size))]

    def latest_checkpoint(self) -> Checkpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1)).first()
        return _checkpoint(row) if row else None

    def verify(self, keys: KeyStore | None = None, *, progress=None, signatures: bool = True) -> Report:
        """Verify the log as it stands now: the audit service may append while this reads,
        so only the entries and checkpoints up to the size at the start are checked."""
        size = self.size
        return verify_log(
            self.entries(upto=size), [cp for cp in self.checkpoints() if cp.size <= size], keys or self.keys,
            progress=progress, signatures=signatures, checkpoint_every=self.checkpoint_every,
        )

    def trace(self, ref: str) -> list[Entry]:
        """Everything recorded about one directive, plus the insights that name it."""
        like = f'%"{ref}"%'
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(entries)
                .where(or_(entries.c.ref == ref, (entries.c.kind == Kind.INSIGHT.value) & entries.c.payload.like(like)))
                .order_by(entries.c.seq)
            ).all()
        return [_entry(r) for r in rows]

    def count(self) -> int:
        return self.size

    # -- export --------------------------------------------------------------------

    def export(self, path: Path, at: datetime, progress=None) -> int:
        """Write the log up to its latest signed checkpoint as JSON lines: a header with the
        public keys and the final checkpoint, the audit key's signature over that header
        line's exact bytes, then each entry and, after the entry it covers, each checkpoint;
        so it always ends on a checkpoint. It writes nothing to the log (the audit service is
        its only writer); entries after the latest checkpoint go in the next export."""
        cps = {cp.size: cp for cp in self.checkpoints()}
        upto = max(cps, default=0)
        header = {
            "format": EXPORT_FORMAT,
            "exported_at": at.isoformat(),
            "entries": upto,
            "checkpoint_every": self.checkpoint_every,
            # One key per signer, or a list (current first) for a principal whose retired keys signed entries too.
            "keys": {
                signer: public_to_text(ks[0]) if len(ks) == 1 else [public_to_text(k) for k in ks]
                for signer, ks in self.keys.all_keys().items()
            },
            # Ties the signed header to this export's contents: the last checkpoint covers every entry.
            "final_checkpoint": json.loads(cps[upto].body()) if upto else None,
        }
        header_line = json.dumps(header, sort_keys=True)  # ASCII: its bytes are what is signed
        signature = self.signer.sign(Kind.EXPORT_HEADER, header_line.encode())
        n = 0
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            fh.write(header_line + "\n")
            fh.write(json.dumps({"header_signature": {"signer": self.signer.name, "signature": signature}}) + "\n")
            for e in self.entries(upto=upto):
                fh.write(json.dumps({"entry": e.model_dump(mode="json")}, ensure_ascii=False) + "\n")
                if e.seq in cps:
                    fh.write(json.dumps({"checkpoint": cps[e.seq].model_dump(mode="json")}) + "\n")
                n += 1
                if progress is not None:
                    progress(1)
        tmp.replace(path)
        return n
