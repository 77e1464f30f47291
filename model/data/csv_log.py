"""CSV files: reading one that must have certain columns, and an append-only log whose rows
are written and flushed at once, so a crash loses at most one."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def read_rows(path: Path, fields: Sequence[str], kind: str) -> list[dict[str, str]]:
    """The rows of a CSV that must have ``fields``; a ValueError saying it is not a ``kind``."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = set(fields) - set(rows[0] if rows else fields)
    if missing:
        raise ValueError(f"{path} is not a {kind}: missing columns {sorted(missing)}")
    return rows


class CsvLog:
    """A CSV that only grows, one flushed write a row, so a crash loses at most the last row.

    Rows never span lines (callers collapse newlines), so a torn last line left by a crash is
    recognised (no final newline) and cut off when the file is opened again.
    """

    def __init__(self, path: Path, fields: Sequence[str]):
        self.path, self.fields = path, tuple(fields)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = self._read_repaired()
        self._file = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (closed in close)
        if path.stat().st_size == 0:
            self._write(dict(zip(self.fields, self.fields, strict=True)))

    def _read_repaired(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        content = self.path.read_bytes()
        if content and not content.endswith(b"\n"):
            log.warning("%s: cutting off a torn last line", self.path)
            content = content[: content.rfind(b"\n") + 1]
            self.path.write_bytes(content)
        return list(csv.DictReader(io.StringIO(content.decode("utf-8"), newline="")))

    def _write(self, row: dict[str, object]) -> None:
        line = io.StringIO()
        csv.DictWriter(line, self.fields, lineterminator="\n").writerow(row)
        self._file.write(line.getvalue())
        self._file.flush()

    def append(self, row: dict[str, object]) -> None:
        self._write(row)
        self.rows.append({k: str(v) for k, v in row.items()})

    def close(self) -> None:
        self._file.close()
