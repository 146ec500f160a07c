"""The database: SQLAlchemy 2 typed ORM, engine set-up, Alembic migrations."""
