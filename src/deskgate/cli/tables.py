"""Tables for the CLI that stay usable in an 80-column terminal.

An id is what a person copies into the next command (`approvals approve ID`,
`audit trace ID`), so id columns never wrap and are never cut. Short values
(numbers, times) are kept on one line too. When a table is too wide, rich narrows
the wrappable columns, widest first, so free text (an order described in words, a
reason, a recall entry) gives way: it folds onto more lines and loses nothing.
"""

from __future__ import annotations

from rich import box
from rich.table import Table


def compact_table(title: str | None = None) -> Table:
    """No outer frame and one space between columns: room for the ids at 80 columns."""
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))


def id_column(table: Table, header: str, **kw) -> None:
    """Ids, whole on one line, whatever the terminal's width."""
    table.add_column(header, no_wrap=True, **kw)


def value_column(table: Table, header: str, **kw) -> None:
    """A short value (a number, a time, a state): one line, never cut unless nothing else can give."""
    table.add_column(header, no_wrap=True, **kw)


def text_column(table: Table, header: str, **kw) -> None:
    """Free text: the column that gives way, wrapping at words (a word too long for it folds)."""
    table.add_column(header, overflow="fold", **kw)
