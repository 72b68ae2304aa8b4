"""Metadata values in the forms the Dagster UI formats well, shared by every domain."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import dagster as dg
import pandas as pd

from liqheat_pipeline.lib.warehouse.schema import TABLES

SAMPLE_SIZE = 12
_PREVIEW_ROWS = 3


def usd(value: float) -> dg.MetadataValue:
    """Whole US dollars as an integer: the UI shows thousands separators and can plot it."""
    return dg.MetadataValue.int(round(value))


def percent(value: float) -> dg.MetadataValue:
    return dg.MetadataValue.text("unknown" if math.isnan(value) else f"{value:.1%}")


def row_counts(table: str, partition_rows: int) -> dict[str, dg.MetadataValue]:
    """The table written and how many rows this partition holds in it."""
    return {
        "dagster/table_name": dg.MetadataValue.text(table),
        "dagster/partition_row_count": dg.MetadataValue.int(int(partition_rows)),
    }


def sample_times(times: Sequence[datetime], total: int) -> str:
    """The first few of ``total`` instants as text, e.g. for a list of gaps."""
    if not total:
        return "none"
    shown = ", ".join(f"{t:%Y-%m-%d %H:%M}" for t in times[:SAMPLE_SIZE])
    more = total - min(len(times), SAMPLE_SIZE)
    return f"{shown} (+{more} more)" if more > 0 else shown


def rows_table(rows: pd.DataFrame) -> dg.MetadataValue:
    """Rows as a UI table (timestamps as UTC text, missing values as empty cells)."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn(str(name), _column_type(rows[name])) for name in rows.columns]
    )
    records = [
        dg.TableRecord({str(name): _cell(value) for name, value in row.items()})
        for row in rows.to_dict("records")
    ]
    return dg.MetadataValue.table(records, schema=schema)


def preview_rows(rows: pd.DataFrame) -> dg.MetadataValue:
    """The first and last few rows as a UI table."""
    if len(rows) > 2 * _PREVIEW_ROWS:
        rows = pd.concat([rows.head(_PREVIEW_ROWS), rows.tail(_PREVIEW_ROWS)])
    return rows_table(rows)


def _column_type(column: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(column):
        return "timestamp"
    if pd.api.types.is_integer_dtype(column):
        return "int"
    if pd.api.types.is_float_dtype(column):
        return "float"
    return "string"


def _cell(value: object) -> str | int | float | bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def table_metadata(table: str) -> dict[str, object]:
    """Definition metadata of an asset stored in ``table``: its name and column schema (the
    registry's DDL), so the catalog shows the columns before anything is materialized."""
    columns = [
        dg.TableColumn(
            column.name,
            column.type,
            constraints=dg.TableColumnConstraints(nullable=column.nullable),
        )
        for column in TABLES[table].column_definitions
    ]
    return {
        "dagster/table_name": table,
        "dagster/column_schema": dg.TableSchema(columns=columns),
    }
