"""What the OpenAPI document declares per route, checked without a request: every error in
the one error shape (OpenAI's under ``/v1``), no blanket ``default`` or 500, and the codes
that follow from what a route takes (the fuzz run checks what it answers)."""

from __future__ import annotations

from typing import Any

import pytest

from ragline.config import Settings
from ragline.main import create_app

RATE_LIMITED = {
    ("post", "/chats/{chat_id}/chat"),
    ("post", "/chats/{chat_id}/chat/stream"),
    ("post", "/v1/chat/completions"),
    ("post", "/chats/{chat_id}/upload"),
    ("put", "/chats/{chat_id}/files/{file_id}"),
    ("get", "/signin"),
}
MODEL_BACKED = {
    ("post", "/chats/{chat_id}/chat"),
    ("post", "/chats/{chat_id}/chat/stream"),
    ("post", "/v1/chat/completions"),
}
UPLOADS = {("post", "/chats/{chat_id}/upload"), ("put", "/chats/{chat_id}/files/{file_id}")}
SIGN_IN_FLOW = {"/signin", "/redirect", "/logout", "/healthz", "/readyz"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings(_env_file=None)).openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_error_has_the_error_body(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            assert status not in {"default", "500"}, (method, path, status)
            if int(status) < 400 or (path, status) == ("/readyz", "503"):
                continue
            schema = response["content"]["application/json"]["schema"]["$ref"]
            expected = "OpenAIErrorBody" if path.startswith("/v1/") else "ErrorBody"
            assert schema == f"#/components/schemas/{expected}", (method, path, status)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert set(schemas["ErrorBody"]["required"]) == {"error", "detail"}


def test_codes_follow_from_what_a_route_takes(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        declared = set(operation["responses"])
        where = (method, path)
        if path not in SIGN_IN_FLOW:
            assert {"401", "403"} <= declared, where
        if "{" in path:
            assert "404" in declared, where
        if (operation.get("parameters") or "requestBody" in operation) and path != "/redirect":
            # (/redirect's parameters are optional strings: nothing to refuse)
            assert ("400" if path.startswith("/v1/") else "422") in declared, where
        if "requestBody" in operation:
            assert {"400", "413"} <= declared, where
        assert ("429" in declared) == (where in RATE_LIMITED), where
        assert {"502", "503"} <= declared if where in MODEL_BACKED else "502" not in declared
        if where in UPLOADS:
            assert {"413", "415"} <= declared, where
