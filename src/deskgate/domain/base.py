"""Shared model settings for wire messages."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    """A message the desk publishes. Lax enough to round-trip its own JSON, no extra keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
