"""Telling a persisted live message from a reflected one.

Live messages reach readers because a stream republishes what it stored (see
bus/accounts.py), so they carry the stream's headers: which stream, which subject,
which sequence. Inside one account a client can still aim a JetStream answer (a
publish acknowledgement, a stored message from a direct get) at a subject another
client of that account listens to; such a message does not name the stream and its
own subject. Live readers accept only what does.
"""

from __future__ import annotations

from typing import TypeVar

from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_live(msg: Msg, stream: str, model: type[M]) -> M | None:
    """The message as `model`, if the stream persisted it and it is readable; else None."""
    if not persisted(msg, stream):
        return None
    try:
        return model.model_validate_json(msg.data)
    except ValidationError:
        return None


def persisted(msg: Msg, stream: str) -> bool:
    headers = msg.headers or {}
    return (
        headers.get("Nats-Stream") == stream
        and headers.get("Nats-Subject") == msg.subject
        and headers.get("Nats-Sequence", "").isdigit()
    )
