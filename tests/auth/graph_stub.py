"""A loopback stand-in for Microsoft Graph (which cannot run here), with Graph's paths and
shapes: ``GET /v1.0/me/photo/$value`` (image bytes, 404 without a photo),
``GET /v1.0/me/memberOf`` and ``GET /v1.0/users/{id}/memberOf`` (``{"value": [...]}``
paged with ``@odata.nextLink``). The caller is the ``oid`` of the bearer token, which the
real Graph would validate; the stand-in checks it is a JWT issued by the test provider's
issuer and reads its claims. Every request is recorded, so tests can count Graph calls."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fake_providers import JsonHandler

PAGE = 2  # groups per page, so that paging is exercised


@dataclass
class GraphStub:
    issuer: str
    photos: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # oid -> bytes, type
    groups: dict[str, list[str]] = field(default_factory=dict)  # oid -> group ids
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # path, caller oid
    url: str = ""

    def calls(self, fragment: str) -> int:
        return sum(1 for path, _ in self.requests if fragment in path)


def _claims(authorization: str | None) -> dict[str, Any] | None:
    if not authorization or not authorization.startswith("Bearer "):
        return None
    parts = authorization[7:].split(".")
    if len(parts) != 3:
        return None
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def _handler(stub: GraphStub) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            claims = _claims(self.headers.get("Authorization"))
            caller = claims.get("oid") if claims else None
            stub.requests.append((self.path, caller))
            if claims is None or claims.get("iss") != stub.issuer:
                self._answer(401, {"error": {"code": "InvalidAuthenticationToken"}})
                return
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            if parts == ["v1.0", "me", "photo", "$value"]:
                self._photo(str(caller))
            elif parts == ["v1.0", "me", "memberOf"]:
                self._groups(str(caller), url.query)
            elif len(parts) == 4 and parts[:2] == ["v1.0", "users"] and parts[3] == "memberOf":
                self._groups(parts[2], url.query)
            else:
                self._answer(404, {"error": {"code": "Request_ResourceNotFound"}})

        def _photo(self, oid: str) -> None:
            if oid not in stub.photos:
                self._answer(404, {"error": {"code": "ImageNotFound"}})
                return
            content, media_type = stub.photos[oid]
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _groups(self, oid: str, query: str) -> None:
            skip = int(parse_qs(query).get("$skiptoken", ["0"])[0])
            groups = stub.groups.get(oid, [])
            page = [
                {"@odata.type": "#microsoft.graph.group", "id": g}
                for g in groups[skip : skip + PAGE]
            ]
            body: dict[str, Any] = {"value": page}
            if skip + PAGE < len(groups):
                body["@odata.nextLink"] = (
                    f"{stub.url}{urlsplit(self.path).path}?$select=id&$skiptoken={skip + PAGE}"
                )
            self._answer(200, body)

    return Handler


@contextmanager
def graph_stub(issuer: str) -> Iterator[GraphStub]:
    stub = GraphStub(issuer=issuer)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
