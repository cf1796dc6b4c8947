"""Strict numbers for request schemas, as JSON Schema reads them.

An ``integer`` is any number without a fractional part (``2.0`` included), never a
boolean or a string: pydantic's ``StrictInt`` alone refuses ``2.0``, its lax ``int``
takes ``true`` and ``"2"``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, StrictInt


def _whole_float(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[StrictInt, BeforeValidator(_whole_float)]
