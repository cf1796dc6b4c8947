"""Read an upload's multipart body with its limits enforced while it streams.

Starlette's parser spools every file whole before the endpoint can look at it: a 105 MB
file was received in full before it was refused. This one refuses the request as soon as
a file part passes ``UPLOAD_MAX_BYTES`` (413) or a part names a file longer than the
file-name limit (422), before reading on; the whole request's limit
(``UPLOAD_MAX_REQUEST_BYTES``) is counted by ``kit.body_limit`` under it. Files received so
far are temporary files (closed, so deleted, on any error): a refused request stores
nothing.
"""

from __future__ import annotations

import codecs
from contextlib import aclosing
from pathlib import PurePath
from typing import TYPE_CHECKING

import python_multipart
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from ragline.errors import BadRequest, PayloadTooLarge, Unprocessable

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_HEADER_BYTES = 16 * 1024
"""A part's header (its file name included) may be this long; a longer one is refused."""


class FileNameTooLong(Unprocessable):
    pass


def base_name(raw: str) -> str:
    """The last path component of a client's file name (some browsers send a full path)."""
    return PurePath(raw.replace("\\", "/")).name


class _LimitedParser(MultiPartParser):
    def __init__(self, request: Request, *, max_files: int, max_file_bytes: int, max_name: int):
        super().__init__(
            request.headers,
            request.stream(),
            max_files=max_files,
            max_fields=max_files + 5,
        )
        self.max_file_bytes = max_file_bytes
        self.max_name = max_name
        self._part_bytes = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._part_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self._part_bytes += end - start
            if self._part_bytes > self.max_file_bytes:
                name = base_name(self._current_part.file.filename or "")
                raise PayloadTooLarge(
                    f"The file {name[:80]!r} is larger than {self.max_file_bytes} bytes "
                    "(UPLOAD_MAX_BYTES); the request was refused and nothing was stored."
                )
        super().on_part_data(data, start, end)

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        super().on_header_value(data, start, end)
        if len(self._current_partial_header_value) > MAX_HEADER_BYTES:
            raise self._name_too_long()

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        upload = self._current_part.file
        if upload is not None and len(base_name(upload.filename or "")) > self.max_name:
            raise self._name_too_long()

    def _name_too_long(self) -> FileNameTooLong:
        return FileNameTooLong(
            f"A file name is longer than {self.max_name} characters, the limit; rename the "
            "file and upload it again."
        )

    async def parse(self) -> FormData:
        """Starlette's ``parse``, with python-multipart's own header limit raised above
        ``MAX_HEADER_BYTES`` so that a long file name meets the clear error above."""
        _, params = parse_options_header(self.headers["Content-Type"])
        charset = params.get(b"charset", "utf-8")
        if isinstance(charset, bytes):
            charset = charset.decode("latin-1")
        try:
            self._charset = codecs.lookup(charset).name
        except LookupError:
            self._charset = "latin-1"
        if b"boundary" not in params:
            raise MultiPartException("Missing boundary in multipart.")
        callbacks: MultipartCallbacks = {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }
        try:
            parser = python_multipart.MultipartParser(
                params[b"boundary"], callbacks, max_header_size=4 * MAX_HEADER_BYTES
            )
            async for chunk in self.stream:
                parser.write(chunk)
                for part, data in self._file_parts_to_write:
                    assert part.file is not None
                    await part.file.write(data)
                for part in self._file_parts_to_finish:
                    assert part.file is not None
                    await part.file.seek(0)
                self._file_parts_to_write.clear()
                self._file_parts_to_finish.clear()
            parser.finalize()
        except BaseException as exc:
            for file in self._files_to_close_on_error:
                file.close()
            if isinstance(exc, FormParserError):
                raise MultiPartException("Invalid multipart data.") from exc
            raise
        return FormData(self.items)


async def read_upload_form(
    request: Request, *, max_files: int, max_file_bytes: int, max_name: int
) -> FormData:
    """The form, its files in temporary files; close it when done (``await form.close()``).
    ``BadRequest`` on malformed multipart or too many files, ``PayloadTooLarge`` (413),
    ``FileNameTooLong`` (422)."""
    parser = _LimitedParser(
        request, max_files=max_files, max_file_bytes=max_file_bytes, max_name=max_name
    )
    try:
        async with aclosing(parser.stream):
            return await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(exc.message) from exc
