"""Core statements run on the driver's cursor: the hot reads without the execute path.

Every pull reads its rows and its facts before the decision. Measured with
py-spy (``wrk -c16`` on a manifest GET, one worker), SQLAlchemy's execute path
around those two statements (events, execution context, cursor result, row
processors) took a quarter of the event loop's time, several times what SQLite
spends running them. A :class:`PreparedQuery` compiles its statement once per
dialect, keeps its result columns' processors (JSON, DateTime), and runs it on
the DBAPI cursor of the caller's connection, inside the caller's transaction.

Only what those reads need is supported: a SELECT whose parameters need no
bind processing and expand into no ``IN`` list; anything else is refused when
the query is first compiled, so a misuse fails loudly rather than binding a
value wrongly.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Select

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    """One statement for one dialect: its SQL, parameter order and row shape."""

    sql: str
    positions: Sequence[str] | None  # parameter names in order, for positional paramstyles
    defaults: Mapping[str, Any]  # the statement's own values (literals compiled as binds)
    processors: Sequence[Processor]
    row: Any  # a namedtuple class named after the selected columns

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        merged = {**self.defaults, **values} if self.defaults else values
        if self.positions is None:
            return merged
        return [merged[name] for name in self.positions]

    def make(self, raw: Sequence[Any]) -> Any:
        return self.row._make(
            value if process is None or value is None else process(value)
            for process, value in zip(self.processors, raw, strict=True)
        )


class PreparedQuery:
    """A SELECT compiled once per dialect and run on the connection's DBAPI cursor."""

    def __init__(self, statement: Select[Any]) -> None:
        self._statement = statement
        self._by_dialect: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any | None:
        """The first row (a named tuple) or None, read in ``conn``'s transaction."""
        compiled, cursor = self._execute(conn, params)
        try:
            raw = cursor.fetchone()
        finally:
            cursor.close()
        return None if raw is None else compiled.make(raw)

    def all(
        self, conn: Connection, params: Mapping[str, Any], *, processed: bool = True
    ) -> list[Any]:
        """Every row (named tuples), read in ``conn``'s transaction.

        ``processed=False`` leaves the values as the driver returned them (no
        JSON or DateTime parsing) for a caller that may only compare them;
        :meth:`processed` finishes such a row when it is needed after all.
        """
        compiled, cursor = self._execute(conn, params)
        try:
            raw_rows = cursor.fetchall()
        finally:
            cursor.close()
        if not processed:
            return [compiled.row._make(raw) for raw in raw_rows]
        return [compiled.make(raw) for raw in raw_rows]

    def processed(self, dialect: Dialect, row: Any) -> Any:
        """A row of ``all(..., processed=False)`` with its values processed."""
        return self._compiled(dialect).make(row)

    def _execute(self, conn: Connection, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled = self._compiled(conn.dialect)
        if not conn.in_transaction():
            conn.begin()  # closed (rolled back) with the connection, as an execute's autobegin
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.parameters(params))
        except BaseException:
            cursor.close()
            raise
        return compiled, cursor

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            with self._lock:
                found = self._by_dialect.setdefault(
                    dialect.name, _compile(self._statement, dialect)
                )
        return found


def _compile(statement: Select[Any], dialect: Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect)
    for name, bind in compiled.binds.items():
        if bind.expanding or bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
            raise TypeError(f"PreparedQuery cannot bind parameter {name!r}; use Connection.execute")
    columns = list(statement.selected_columns)
    processors = [
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    ]
    names = [str(column.key) for column in columns]
    return _Compiled(
        sql=compiled.string,
        positions=list(compiled.positiontup) if dialect.positional else None,
        defaults={
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        },
        processors=processors,
        row=namedtuple("PreparedRow", names),
    )
