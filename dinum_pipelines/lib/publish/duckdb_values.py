"""DuckDB's values and types, said the way data.gouv.fr's tools say them: values as JSON, types
as csv-detective's `python_type` (string, int, float, bool, date, datetime, json).

Shared by the catalog's row API (answers, its per-resource OpenAPI document) and the pipeline's
column profile, so a column has the same type and its values the same text in both.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_PYTHON_TYPES = {"BOOLEAN": "bool", "DATE": "date", "TIMESTAMP": "datetime", "TIMESTAMP WITH TIME ZONE": "datetime"}


def is_numeric(column_type: str) -> bool:
    return column_type.split("(")[0] in NUMERIC_TYPES


def python_type(column_type: str) -> str:
    """csv-detective's `python_type` vocabulary for a DuckDB type (what api-tabular's swagger uses)."""
    base = column_type.split("(")[0]
    if base in NUMERIC_TYPES:
        return "float" if base in ("FLOAT", "DOUBLE") or (base == "DECIMAL" and not column_type.endswith(",0)")) else "int"
    if column_type.endswith("[]") or base in ("STRUCT", "MAP", "LIST", "JSON"):
        return "json"
    return _PYTHON_TYPES.get(column_type, "string")


def jsonable(value: Any) -> Any:
    """A DuckDB value as JSON: numbers as numbers (NaN and infinities as null), dates and times
    as ISO 8601 strings, binary as base64, nested values recursively."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return str(value)
