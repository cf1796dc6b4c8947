"""chat files by chat and status: a search asks whether any file of its chat is unfinished

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_chat_files_chat_status", "chat_files", ["chat_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_chat_files_chat_status", table_name="chat_files")
