"""ingestion job columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_files", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("storage_key", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("chunks_done", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("chunks_total", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_chat_files_chat_id_sha256"), ["chat_id", "sha256"]
        )


def downgrade() -> None:
    with op.batch_alter_table("chat_files", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_chat_files_chat_id_sha256"), type_="unique")
        batch_op.drop_column("indexed_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("chunks_total")
        batch_op.drop_column("chunks_done")
        batch_op.drop_column("version")
        batch_op.drop_column("storage_key")
