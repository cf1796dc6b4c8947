"""chat messages: status ``aborted``, an answer the client left before it ended (its text
is what had been sent)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_chat_messages_message_status"


def _allow(*values: str) -> None:
    listed = ", ".join(f"'{value}'" for value in values)
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch.create_check_constraint(op.f(CONSTRAINT), f"status IN ({listed})")


def upgrade() -> None:
    _allow("complete", "error", "aborted")


def downgrade() -> None:
    op.execute("UPDATE chat_messages SET status = 'error' WHERE status = 'aborted'")
    _allow("complete", "error")
