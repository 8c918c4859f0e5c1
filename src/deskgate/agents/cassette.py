"""Cassettes: a model's answers recorded to a file, and played back in place of the model.

A day drafted by a real model can then be re-run offline, without the model, and the
desk sends the same directives: `deskgate demo --record F` records, `--replay-llm F`
plays back. One JSON line per call, in order: the step, its prompt version, the
SHA-256 of the exact prompt, and the typed answer (or the failure, which plays back
as the same failure).

Playing back checks every call against the recording: the same step, the same
prompt version and the same prompt, or a `CassetteMismatch` naming the call and what
differs (a different seed, market, memory or code gives different prompts). Memory
edits a model made through its tools while recording are not recorded; with
`output_mode: native` (no tools) a played-back run is the recorded one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

VERSION = 1


class CassetteMismatch(RuntimeError):
    """The run asks for something the cassette did not record; the message says where and what."""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Cassette:
    def __init__(self, path: Path, mode: str, calls: list[dict] | None = None, model: dict | None = None):
        self.path, self.mode = Path(path), mode
        self.calls = calls or []
        self.model = model or {}  # the agents.model settings it was recorded with
        self.position = 0  # calls played back
        self.kept = 0  # calls recorded

    @classmethod
    def record(cls, path: str | Path, model: dict) -> Cassette:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"cassette": VERSION, "model": model}) + "\n")
        return cls(path, "record", model=model)

    @classmethod
    def replay(cls, path: str | Path) -> Cassette:
        path = Path(path)
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise CassetteMismatch(f"cannot read the cassette {path}: {exc.strerror or exc}") from None
        try:
            head = json.loads(lines[0]) if lines else {}
            calls = [json.loads(line) for line in lines[1:] if line.strip()]
        except json.JSONDecodeError as exc:
            raise CassetteMismatch(f"{path} is not a cassette: line {exc.lineno} is not JSON") from None
        if head.get("cassette") != VERSION:
            raise CassetteMismatch(f"{path} is not a deskgate cassette (version {VERSION})")
        return cls(path, "replay", calls, head.get("model"))

    def finished(self) -> None:
        """After a played-back run: every recorded call was asked for."""
        if self.mode == "replay" and self.position != len(self.calls):
            raise CassetteMismatch(f"the run asked for {self.position} of the {len(self.calls)} calls in {self.path}: it did not play back as recorded")

    def keep(self, fn: str, version: str, prompt: str, answer: Any = None, error: str | None = None, adapter: TypeAdapter | None = None) -> None:
        entry = {"fn": fn, "version": version, "prompt_sha256": digest(prompt)}
        if error is not None:
            entry["error"] = error
        else:
            entry["answer"] = (adapter or TypeAdapter(type(answer))).dump_python(answer, mode="json")
        with self.path.open("a") as fh:
            fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self.kept += 1

    def play(self, fn: str, version: str, prompt: str, adapter: TypeAdapter) -> tuple[Any, str | None]:
        """The recorded (answer, None) or (None, error) for this call; CassetteMismatch if it is not the recorded call."""
        n = self.position + 1
        if self.position >= len(self.calls):
            raise CassetteMismatch(f"the cassette {self.path} holds {len(self.calls)} calls; this run asks for a call {n} ({fn})")
        entry = self.calls[self.position]
        if (entry.get("fn"), entry.get("version")) != (fn, version):
            raise CassetteMismatch(f"call {n} of {self.path}: recorded {entry.get('fn')} ({entry.get('version')}), this run asks for {fn} ({version})")
        if entry.get("prompt_sha256") != digest(prompt):
            raise CassetteMismatch(
                f"call {n} of {self.path} ({fn}): this run's prompt differs from the recorded one (another seed, market, "
                f"memory or code): it cannot be played back"
            )
        self.position += 1
        if "error" in entry:
            return None, str(entry["error"])
        try:
            return adapter.validate_python(entry["answer"]), None
        except (KeyError, ValidationError) as exc:
            raise CassetteMismatch(f"call {n} of {self.path} ({fn}): the recorded answer does not fit this code's types: {exc}") from None
