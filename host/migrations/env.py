"""Alembic environment: the database URL comes from the Alembic config (set by ``atm db``) or,
for plain ``alembic upgrade head``, from ``DATABASE_URL`` through ``HostConfig``."""

from alembic import context
from sqlalchemy import pool

import host.admin.models  # registers the operator tables on Base.metadata
import host.link.models  # noqa: F401 - registers the link tables on Base.metadata
from host.bank.models import Base
from host.config import HostConfig
from host.db import create_engine_for

config = context.config
url = config.get_main_option("sqlalchemy.url") or HostConfig.from_env().database_url
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine_for(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
