"""file purges: a deleted file's chunks and bytes are removed by a queued job

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "file_purges",
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("chat_id", sa.Uuid(), nullable=False),
        sa.Column("storage_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_file_purges")),
    )
    op.create_index(op.f("ix_file_purges_chat_id"), "file_purges", ["chat_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_file_purges_chat_id"), table_name="file_purges")
    op.drop_table("file_purges")
