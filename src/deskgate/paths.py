"""Where things live under the data directory. One place, so nothing guesses a path."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataDir:
    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike) -> DataDir:
        return cls(Path(path).expanduser().resolve())

    @property
    def bus(self) -> Path:
        return self.root / "bus"

    @property
    def nats_conf(self) -> Path:
        return self.bus / "nats.conf"

    @property
    def operator_conf(self) -> Path:
        """Server config for an operator-run NATS (bus.url set)."""
        return self.bus / "nats-server.conf"

    @property
    def credentials(self) -> Path:
        return self.bus / "credentials.json"

    @property
    def jetstream(self) -> Path:
        return self.bus / "jetstream"

    @property
    def endpoint(self) -> Path:
        return self.bus / "endpoint.json"

    @property
    def nats_log(self) -> Path:
        return self.logs / "nats-server.log"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def mission_snapshot(self) -> Path:
        """The validated mission the running services read."""
        return self.root / "mission.json"

    @property
    def run_file(self) -> Path:
        return self.root / "run.json"

    @property
    def accounts_db(self) -> Path:
        """Command Center accounts, sessions and the record of what each person did."""
        return self.state / "accounts.db"

    @property
    def memory_db(self) -> Path:
        """The agents' memory: core blocks, recall, archival."""
        return self.state / "memory.db"

    @property
    def agents_state(self) -> Path:
        """The agents' cursors, Governor and counters (JSON, rewritten atomically)."""
        return self.state / "agents.json"

    @property
    def keys(self) -> Path:
        """Ed25519 keys: private/ (one file per role or principal, 0600) and public/."""
        return self.root / "keys"

    @property
    def audit_db(self) -> Path:
        """The hash-chained audit log and its signed checkpoints."""
        return self.state / "audit.db"

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{self.state / (name + '.db')}"

    @property
    def storage_marker(self) -> Path:
        """Where this desk's stores live when not in SQLite files here (storage.url), so every
        process and command opening the data directory finds the same stores."""
        return self.state / "storage.json"

    def storage_url(self) -> str | None:
        """The desk's shared database (storage.url), or None for SQLite files under state/."""
        try:
            return json.loads(self.storage_marker.read_text())["url"]
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.storage_marker} is damaged ({exc}); it should hold {{\"url\": ...}}") from None

    def store_url(self, name: str) -> str:
        """A store's database: the shared one (each store in its own schema, storage.py) or its own SQLite file."""
        return self.storage_url() or self.sqlite_url(name)

    def keep_storage(self, url: str | None, *, starting: bool = False, record: bool = True) -> None:
        """Record where the stores live (`record`: only `deskgate up` and `deskgate db upgrade`
        do, with the desk stopped, since the first opens after it carry the files in). A desk's
        stores do not move by editing a URL: a different URL from the one recorded is refused
        (`starting`: so is a mission that names none, since the desk's state is in the recorded
        database)."""
        recorded = self.storage_url()
        if recorded is not None and url is not None and url != recorded:
            raise ValueError(
                f"this desk's stores are in {_redacted(recorded)} ({self.storage_marker}); storage.url names "
                f"{_redacted(url)}. Stores are not moved by changing the URL: use the recorded one, or start a new data directory"
            )
        if recorded is not None and url is None and starting:
            raise ValueError(
                f"this desk's stores are in {_redacted(recorded)} ({self.storage_marker}), but the mission names no "
                "storage.url: set storage.url to it, or start a new data directory"
            )
        if recorded is None and url is not None and record:
            self.state.mkdir(parents=True, exist_ok=True)
            write_private(self.storage_marker, json.dumps({"url": url}))

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def ensure(self) -> DataDir:
        for d in (self.root, self.bus, self.state, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.bus, 0o700)
        return self

    def read_endpoint(self) -> dict:
        try:
            return json.loads(self.endpoint.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no desk has run in {self.root} (missing {self.endpoint}); start one with `deskgate up`"
            ) from None


def _redacted(url: str) -> str:
    """A database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown by its scheme only
        return url.split(":", 1)[0] + ":..."


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, without a moment of wider permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
