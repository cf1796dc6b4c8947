"""chat files: chunks_settled, whether the last job that wrote a file's chunks finished

Rows that exist already are marked unsettled: their next re-ingest diffs against the
vector store, as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_files") as batch:
        batch.add_column(
            sa.Column("chunks_settled", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("chat_files") as batch:
        batch.drop_column("chunks_settled")
