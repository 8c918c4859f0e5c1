"""Structured logs: one JSON object per line in <data_dir>/logs/<service>.log."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if extra:
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_service_logging(log_file: Path | None, level: int = logging.INFO, to_stderr: bool = True) -> None:
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    # The CLI keeps the desk's own records off a terminal (cli.main); a service's go to its log.
    ours = logging.getLogger("deskgate")
    ours.handlers.clear()
    ours.propagate = True
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(JsonFormatter())
        root.addHandler(fh)
    if to_stderr:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(JsonFormatter())
        sh.setLevel(logging.WARNING)
        root.addHandler(sh)
    logging.getLogger("nats").setLevel(logging.WARNING)
