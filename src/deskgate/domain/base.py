"""Shared model settings for wire messages."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from deskgate.domain.jsonkeys import REPEATED_KEY_MESSAGE, repeated_key


class WireModel(BaseModel):
    """A model read from bytes someone else wrote (and signed): its JSON may not repeat a key.

    pydantic keeps the last of two equal keys; another reader of the same signed bytes may
    keep the first. Every `model_validate_json` of a wire model refuses them instead, as a
    ValidationError like any other malformed message, so every caller already handles it.
    """

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs):
        where = repeated_key(json_data)
        if where is not None:
            detail = InitErrorDetails(type=PydanticCustomError("repeated_key", REPEATED_KEY_MESSAGE), loc=where, input=json_data)
            raise ValidationError.from_exception_data(cls.__name__, [detail], input_type="json")
        return super().model_validate_json(json_data, **kwargs)


class Message(WireModel):
    """A message the desk publishes. Lax enough to round-trip its own JSON, no extra keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
