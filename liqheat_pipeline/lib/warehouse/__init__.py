"""DuckDB storage: the SQL contract's tables, short connections, queries, partition replacement.

Pure DuckDB code (no Dagster) shared by the pipeline, the checks and the HTTP API:
``schema`` (the table registry and view), ``connection`` (lock wait, writer announcement,
transactions), ``query`` (named parameters) and ``replace`` (partition replacement).
"""

from liqheat_pipeline.lib.warehouse.connection import (
    Backoff,
    DatabaseLockedError,
    connect,
    is_lock_conflict,
    read,
    transaction,
    write_intent_path,
    writer_waiting,
)
from liqheat_pipeline.lib.warehouse.query import bind, execute
from liqheat_pipeline.lib.warehouse.replace import replace_rows, replace_table
from liqheat_pipeline.lib.warehouse.schema import (
    TABLE_DDL,
    TABLES,
    VIEW_DDL,
    Table,
    ensure_schema,
    schema_is_current,
)

__all__ = [
    "TABLES",
    "TABLE_DDL",
    "VIEW_DDL",
    "Backoff",
    "DatabaseLockedError",
    "Table",
    "bind",
    "connect",
    "ensure_schema",
    "execute",
    "is_lock_conflict",
    "read",
    "replace_rows",
    "replace_table",
    "schema_is_current",
    "transaction",
    "write_intent_path",
    "writer_waiting",
]
