"""The audit log's entries, their hash chain, signed Merkle checkpoints, and verification.

An entry holds one signed message exactly as it was published (its payload text,
its signer, its signature), what it is (kind, subject, the directive it belongs
to) and when it was recorded. Its hash covers all of that and the previous
entry's hash, so no entry can change, move or vanish without every later hash
changing; the timestamps are inside what is hashed. Every so many entries the
audit service signs a checkpoint: the RFC 6962 Merkle root of all entry hashes so
far. Verification needs only the entries, the checkpoints and the public keys,
no database, and names the first entry that fails.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from contextlib import closing
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from deskgate.audit import merkle
from deskgate.audit.keys import AGENT_SIGNERS, KeyStore, PublicKeys
from deskgate.audit.pool import POOL_ABOVE, Signed, verify_stream
from deskgate.audit.signing import Kind, SignatureStatus, verify

GENESIS = "0" * 64

# What an entry's hash covers: `json.dumps(..., sort_keys=True, separators=(",", ":"),
# ensure_ascii=False)`, with the encoder made once rather than per entry.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

# Who must have signed each kind of entry. A principal's decisions and resets are
# signed with their own key, an agent's output with its own identity's key
# (`agent:<name>`; or, in logs from before per-agent identities, the shared `agent`
# key, kept so that they still verify); everything else by its role.
EXPECTED_SIGNER: dict[str, tuple[str, ...]] = {
    Kind.DIRECTIVE: AGENT_SIGNERS,
    Kind.INSIGHT: AGENT_SIGNERS,
    Kind.EVALUATION: ("factory",),
    Kind.STAGED: ("factory",),
    Kind.OUTCOME: ("factory",),
    Kind.ORDER: ("factory",),
    Kind.FILL: ("executor",),
    Kind.APPROVAL: ("principal:",),
    Kind.BREAKER: ("factory", "principal:"),
    Kind.QUARANTINE: ("marketdata",),
    Kind.RELEASE: ("principal:",),
    Kind.VENUE_ACK: ("principal:",),
    Kind.NEWS: ("marketdata",),
}


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1)
    kind: str
    subject: str
    ref: str | None = None  # the directive (or item) this belongs to, for `audit trace`
    source: str  # where it was read: "<STREAM>:<stream sequence>"
    recorded_at: AwareDatetime
    signer: str | None = None
    signature: str | None = None
    # The signature's status when recorded. A forged or unsigned message is still
    # recorded, faithfully, as such; an entry recorded "valid" that no longer verifies
    # was changed after the fact.
    status: SignatureStatus = SignatureStatus.VALID
    payload: str
    prev_hash: str
    hash: str = ""

    def body(self) -> bytes:
        """The canonical bytes that are hashed: every field but the hash itself."""
        return _CANONICAL.encode(self.model_dump(mode="json", exclude={"hash"})).encode()

    def computed_hash(self) -> str:
        return hashlib.sha256(self.body()).hexdigest()

    def sealed(self) -> Entry:
        return self.model_copy(update={"hash": self.computed_hash()})


class Checkpoint(BaseModel):
    """A signed tree head: the Merkle root over the hashes of entries 1..size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(ge=1)
    root: str
    head_hash: str  # the hash of entry `size`, tying the tree to the chain
    at: AwareDatetime
    signer: str = "audit"
    signature: str = ""

    def body(self) -> bytes:
        d = self.model_dump(mode="json", exclude={"signature", "signer"})
        return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


def new_entry(seq: int, prev_hash: str, *, kind: str, subject: str, ref: str | None, source: str, recorded_at: datetime,
              signer: str | None, signature: str | None, status: SignatureStatus | str, payload: str) -> Entry:
    return Entry(
        seq=seq, kind=kind, subject=subject, ref=ref, source=source, recorded_at=recorded_at,
        signer=signer, signature=signature, status=status, payload=payload, prev_hash=prev_hash,
    ).sealed()


def new_row(seq: int, prev_hash: str, **fields) -> dict:
    """`new_entry(...).model_dump(mode="json")`, the entry as stored, validated once and
    dumped once instead of three times: appending is the audit service's hot path."""
    row = Entry(seq=seq, prev_hash=prev_hash, **fields).model_dump(mode="json")
    del row["hash"]
    row["hash"] = hashlib.sha256(_CANONICAL.encode(row).encode()).hexdigest()
    return row


def leaf(entry_hash: str) -> bytes:
    return merkle.leaf_hash(bytes.fromhex(entry_hash))


class Problem(BaseModel):
    seq: int | None  # the entry, or None for the log as a whole
    what: str


class Report(BaseModel):
    entries: int = 0
    checkpoints: int = 0
    signatures: dict[str, int] = Field(default_factory=dict)  # status -> count
    problems: list[Problem] = Field(default_factory=list)
    # Messages recorded faithfully whose signatures did not verify when they arrived
    # (an unsigned or forged directive the factory refused, say): history, not damage.
    unverified: list[Problem] = Field(default_factory=list)
    unverified_count: int = 0
    # Entries after the last checkpoint: protected by the chain alone until the next one.
    unchecked_tail: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def signature_status(keys: KeyStore | PublicKeys, e: Entry) -> SignatureStatus:
    return verify(keys, e.kind, e.payload.encode(), e.signer, e.signature, expect=EXPECTED_SIGNER.get(e.kind))


def _signed(e: Entry | Problem) -> Signed | None:
    if isinstance(e, Problem):
        return None
    return Signed(e.kind, e.payload.encode(), e.signer, e.signature, EXPECTED_SIGNER.get(e.kind))


def verify_log(
    entries: Iterable[Entry | Problem],
    checkpoints: Iterable[Checkpoint],
    keys: KeyStore | PublicKeys,
    *,
    max_problems: int = 20,
    progress=None,
    signatures: bool = True,
    checkpoint_every: int | None = None,
    final_checkpoint: bool = False,
    workers: int | None = None,
    pool_above: int = POOL_ABOVE,
) -> Report:
    """Check every entry's signature, the chain, and every checkpoint; stop collecting
    after `max_problems`. Entries must come in order; a gap, repeat or reordering is
    itself reported at the first entry out of place. With `checkpoint_every`, a
    checkpoint must exist at every multiple of it (the audit service writes those in
    the same transaction as the entries); with `final_checkpoint` (an export), the
    last entry must be covered by one, so nothing after it can be changed unseen.

    A `Problem` among the entries says they cannot be read past it (an unreadable line
    of an export): it is reported first and nothing after it is checked. Signatures are
    checked on `workers` processes (every core by default; 1: in this process) once the
    log has more than `pool_above` entries (audit/pool.py); the report is the same."""
    report = Report()
    by_size: dict[int, Checkpoint] = {}
    for cp in checkpoints:
        if cp.size in by_size:
            report.problems.append(Problem(seq=None, what=f"two checkpoints at size {cp.size}"))
        by_size[cp.size] = cp
    report.checkpoints = len(by_size)
    tree = merkle.Tree()
    prev = GENESIS
    expected = 1

    def problem(seq: int | None, what: str) -> bool:
        report.problems.append(Problem(seq=seq, what=what))
        return len(report.problems) >= max_problems

    if signatures:
        checked = verify_stream(keys, entries, _signed, workers=workers, pool_above=pool_above)
    else:  # integrity only: the chain and the signed checkpoints
        checked = ((e, None if isinstance(e, Problem) else e.status) for e in entries)
    with closing(checked):  # an early return stops the workers
        for e, status in checked:
            if isinstance(e, Problem):
                report.problems.insert(0, e)
                break
            report.entries += 1
            if e.seq != expected:
                problem(expected, f"entry {expected} should come next but entry {e.seq} does (entries missing, repeated or reordered)")
                return report
            if e.prev_hash != prev:
                if problem(e.seq, "its previous-hash does not match the entry before it (an entry before it was changed or removed)"):
                    return report
            if e.computed_hash() != e.hash:
                if problem(e.seq, "its contents do not match its hash (the entry was changed)"):
                    return report
            if signatures:
                report.signatures[status.value] = report.signatures.get(status.value, 0) + 1
            if status is not e.status:
                if problem(e.seq, f"the {e.kind}'s signature is {status.value} but was {e.status.value} when recorded (signer {e.signer or 'none'})"):
                    return report
            elif status is not SignatureStatus.VALID:
                report.unverified_count += 1
                if len(report.unverified) < max_problems:
                    report.unverified.append(Problem(seq=e.seq, what=f"{e.kind} on {e.subject}: signature {status.value} (signer {e.signer or 'none'})"))
            try:
                tree.append(leaf(e.hash))
            except ValueError:  # not hex: already reported as not matching its contents; nothing to follow
                return report
            cp = by_size.get(e.seq)
            if cp is not None:
                if cp.head_hash != e.hash or cp.root != tree.head().hex():
                    if problem(e.seq, f"the checkpoint at size {cp.size} does not match the entries up to it"):
                        return report
                cp_status = verify(keys, Kind.CHECKPOINT, cp.body(), cp.signer, cp.signature, expect="audit")
                if cp_status is not SignatureStatus.VALID:
                    if problem(e.seq, f"the checkpoint at size {cp.size} has a signature that is {cp_status.value}"):
                        return report
            prev = e.hash
            expected += 1
            if progress is not None:
                progress(1)
    last = expected - 1
    beyond = sorted(s for s in by_size if s > last)
    if beyond:
        problem(expected, f"the log ends at entry {last} but a checkpoint covers {beyond[-1]} entries (entries were truncated)")
    if checkpoint_every:
        for size in range(checkpoint_every, last + 1, checkpoint_every):
            if size not in by_size:
                problem(size, f"no checkpoint at entry {size}, where one is always signed (checkpoints were removed)")
                break
    covered = max((s for s in by_size if s <= last), default=0)
    report.unchecked_tail = last - covered
    if final_checkpoint and report.unchecked_tail:
        problem(covered + 1, f"entries {covered + 1}-{last} are after the last checkpoint; an export always ends on one (entries or checkpoints were altered)")
    return report
