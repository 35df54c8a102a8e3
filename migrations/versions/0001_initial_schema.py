"""initial schema: people, reviews, messaging, audit; personal data encrypted

Every column holding personal data (names, dates of birth, phone numbers and chat ids, message
text, answers, action descriptions) is Text holding a Fernet token (app.crypto.Encrypted); phone
numbers and chat ids are looked up by channel_identity.address_index, an HMAC, never plaintext.

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:13:00.916868

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('authority',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('nation', sa.String(length=20), nullable=False),
    sa.Column('default_locale', sa.String(length=10), nullable=False),
    sa.Column('role_title', sa.JSON(), nullable=False),
    sa.Column('role_short', sa.JSON(), nullable=False),
    sa.Column('reply_time', sa.JSON(), nullable=False),
    sa.Column('reply_working_days', sa.Integer(), nullable=False),
    sa.Column('out_of_hours_phone', sa.String(length=40), nullable=False),
    sa.Column('advocacy_contact', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authority')),
    sa.UniqueConstraint('name', name=op.f('uq_authority_name'))
    )
    op.create_table('child',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('authority_id', sa.Integer(), nullable=False),
    sa.Column('first_name', sa.Text(), nullable=False),
    sa.Column('date_of_birth', sa.Text(), nullable=True),
    sa.Column('age', sa.Text(), nullable=True),
    sa.Column('locale', sa.String(length=10), nullable=False),
    sa.Column('looked_after_since', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['authority_id'], ['authority.id'], name=op.f('fk_child_authority_id_authority')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_child'))
    )
    op.create_table('staff_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('authority_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('password_hash', sa.String(length=300), nullable=False),
    sa.Column('contact_phone', sa.String(length=40), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['authority_id'], ['authority.id'], name=op.f('fk_staff_user_authority_id_authority')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_user')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_user_email'))
    )
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('child_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_audit_event_child_id_child')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], name=op.f('fk_audit_event_staff_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_child_id'), ['child_id'], unique=False)

    op.create_table('channel_identity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('address_index', sa.String(length=64), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('opted_out_at', sa.DateTime(), nullable=True),
    sa.Column('linked_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_channel_identity_child_id_child')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_identity')),
    sa.UniqueConstraint('channel', 'address_index', name=op.f('uq_channel_identity_channel_address_index'))
    )
    with op.batch_alter_table('channel_identity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channel_identity_child_id'), ['child_id'], unique=False)

    op.create_table('conversation_state',
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_conversation_state_child_id_child')),
    sa.PrimaryKeyConstraint('child_id', name=op.f('pk_conversation_state'))
    )
    op.create_table('iro_assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('iro_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_iro_assignment_child_id_child')),
    sa.ForeignKeyConstraint(['iro_id'], ['staff_user.id'], name=op.f('fk_iro_assignment_iro_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_iro_assignment'))
    )
    with op.batch_alter_table('iro_assignment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_iro_assignment_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iro_assignment_iro_id'), ['iro_id'], unique=False)

    op.create_table('message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=True),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('provider_id', sa.String(length=128), nullable=True),
    sa.Column('sender_index', sa.String(length=64), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('encoding', sa.String(length=10), nullable=True),
    sa.Column('segments', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_message_child_id_child')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message')),
    sa.UniqueConstraint('channel', 'direction', 'provider_id', name=op.f('uq_message_channel_direction_provider_id'))
    )
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_sender_index'), ['sender_index'], unique=False)

    op.create_table('review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('scheduled_for', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_review_child_id_child')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review'))
    )
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_scheduled_for'), ['scheduled_for'], unique=False)

    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('identity_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['channel_identity.id'], name=op.f('fk_outbox_message_identity_id_channel_identity')),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_outbox_message_message_id_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outbox_message_message_id'))
    )
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_message_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_status'), ['status'], unique=False)

    op.create_table('review_action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('owner', sa.Text(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('completed_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['review_id'], ['review.id'], name=op.f('fk_review_action_review_id_review')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_action'))
    )
    with op.batch_alter_table('review_action', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_action_review_id'), ['review_id'], unique=False)

    op.create_table('wishes_submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=True),
    sa.Column('answers', sa.Text(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=False),
    sa.Column('seen_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_wishes_submission_child_id_child')),
    sa.ForeignKeyConstraint(['review_id'], ['review.id'], name=op.f('fk_wishes_submission_review_id_review')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wishes_submission'))
    )
    with op.batch_alter_table('wishes_submission', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wishes_submission_child_id'), ['child_id'], unique=False)

    op.create_table('concern',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('review_action_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_concern_child_id_child')),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_concern_message_id_message')),
    sa.ForeignKeyConstraint(['review_action_id'], ['review_action.id'], name=op.f('fk_concern_review_action_id_review_action')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_concern'))
    )
    with op.batch_alter_table('concern', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_concern_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_concern_urgent'), ['urgent'], unique=False)



def downgrade():
    with op.batch_alter_table('concern', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_concern_urgent'))
        batch_op.drop_index(batch_op.f('ix_concern_child_id'))

    op.drop_table('concern')
    with op.batch_alter_table('wishes_submission', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wishes_submission_child_id'))

    op.drop_table('wishes_submission')
    with op.batch_alter_table('review_action', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_action_review_id'))

    op.drop_table('review_action')
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_message_status'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_next_attempt_at'))

    op.drop_table('outbox_message')
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_scheduled_for'))
        batch_op.drop_index(batch_op.f('ix_review_child_id'))

    op.drop_table('review')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_sender_index'))
        batch_op.drop_index(batch_op.f('ix_message_created_at'))
        batch_op.drop_index(batch_op.f('ix_message_child_id'))

    op.drop_table('message')
    with op.batch_alter_table('iro_assignment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_iro_assignment_iro_id'))
        batch_op.drop_index(batch_op.f('ix_iro_assignment_child_id'))

    op.drop_table('iro_assignment')
    op.drop_table('conversation_state')
    with op.batch_alter_table('channel_identity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channel_identity_child_id'))

    op.drop_table('channel_identity')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_child_id'))
        batch_op.drop_index(batch_op.f('ix_audit_event_at'))

    op.drop_table('audit_event')
    op.drop_table('staff_user')
    op.drop_table('child')
    op.drop_table('authority')
