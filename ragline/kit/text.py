"""Strict text for request schemas: no control characters.

A name is one line: no control character at all (``\\r``, NUL, ESC...), nor Unicode's line
and paragraph separators. Free text (a description, a system prompt, a question) may hold
tabs and line breaks but no other C0 control (NUL cannot even be stored in PostgreSQL).

The check runs on what the client sent, before any trimming, so a name with a leading
``\\r`` is refused rather than trimmed into passing its ``maxLength``; the length is then
checked on the trimmed value, which is what is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

# Names: C0 and C1 controls, DEL, Unicode's line and paragraph separators.
_NAME_CONTROLS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
# Free text: C0 controls but tab, LF and CR; DEL.
_TEXT_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"


@dataclass(frozen=True, slots=True)
class NoControls:
    """Refuses strings holding one of ``controls`` (a regex character-class body) before
    any other check, and says so in the JSON schema (``pattern``), so clients and the
    fuzzer know it from the document."""

    controls: str
    what: str

    def check(self, value: Any) -> Any:
        if isinstance(value, str) and (bad := re.search(f"[{self.controls}]", value)):
            raise ValueError(
                f"{self.what} must not contain control characters (found {bad.group()!r})"
            )
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", f"^[^{self.controls}]*$")
        return json_schema


SingleLine = NoControls(_NAME_CONTROLS, "a name")
"""``Annotated[str, StringConstraints(...), SingleLine]``: a name, no control character."""
FreeText = NoControls(_TEXT_CONTROLS, "text")
"""``Annotated[str, ..., FreeText]``: text where only tabs and line breaks are allowed."""
