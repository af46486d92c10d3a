"""hub.db: the SQL schema (SQLModel tables) and engine creation for SQLite and PostgreSQL."""

from hub.db.engine import create_schema, make_engine
from hub.db.models import CaseRow, EntryRow, LogStateRow, ReplayRow

__all__ = ["CaseRow", "EntryRow", "LogStateRow", "ReplayRow", "create_schema", "make_engine"]
