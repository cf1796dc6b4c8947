from enum import StrEnum


class FileKind(StrEnum):
    DOCUMENT = "document"
    SPREADSHEET = "spreadsheet"
    SQL_DUMP = "sql_dump"


class FileStatus(StrEnum):
    QUEUED = "queued"
    PARSING = "parsing"
    EMBEDDING = "embedding"
    INDEXED = "indexed"
    FAILED = "failed"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    ERROR = "error"
    ABORTED = "aborted"  # the client left mid-answer: the text it had been sent


class ApiKeyScope(StrEnum):
    READ = "read"  # safe methods only (GET, HEAD, OPTIONS)
    READ_WRITE = "read-write"
