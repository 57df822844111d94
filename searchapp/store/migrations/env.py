"""Alembic's environment: migrations run on the connection ``migrate`` (or ``new_revision``)
hands over, inside its transaction."""

from alembic import context

from searchapp.store.schema import Base

context.configure(connection=context.config.attributes["connection"], target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
