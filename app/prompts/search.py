"""Full-text search over prompt text (every message's content): PostgreSQL full text search on an expression GIN
index, SQLite an FTS5 table kept in step by triggers. Both are made by the migration 0009_prompt_browser;
the models do not describe them (`include_object` tells Alembic so).

Both databases match whole words, case-insensitively, every word of the query (no stemming: the `simple`
configuration and FTS5's `unicode61` tokenizer), so a search finds the same prompts on either."""

import re
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, literal_column, select, text
from sqlalchemy.sql import func

from app.errors import Unprocessable
from app.models import Prompt

FTS_TABLE = "prompts_fts"  # SQLite: rowid = prompts.id, one column `body`
PG_INDEX = "ix_prompts_search"
# The indexed expression; a query must use the very same one for PostgreSQL to use the index.
PG_DOCUMENT = "to_tsvector('simple'::regconfig, jsonb_path_query_array(prompts.messages, '$[*].content'::jsonpath))"

_WORD = re.compile(r"\w+")


def words(query: str) -> list[str]:
    """The words searched for; punctuation and operators are not syntax, so any input is a plain search."""
    return _WORD.findall(query.lower())


def matches(dialect: str, query: str) -> ColumnElement[bool]:
    """Prompts whose text holds every word of `query`."""
    found = words(query)
    if not found:
        raise Unprocessable("q: give at least one word to search for")
    if dialect == "postgresql":
        return literal_column(PG_DOCUMENT).op("@@")(func.plainto_tsquery(text("'simple'::regconfig"), " ".join(found)))
    # FTS5: each word quoted (a string, never query syntax), juxtaposed words are ANDed.
    fts_query = " ".join('"' + w + '"' for w in found)
    rows: Select[tuple[Any]] = (
        select(literal_column("rowid"))
        .select_from(text(FTS_TABLE))
        .where(literal_column(FTS_TABLE).op("MATCH")(bindparam("fts_query", fts_query)))
    )
    return Prompt.id.in_(rows)


def include_object(obj, name: str | None, type_: str, reflected: bool, compare_to) -> bool:
    """For Alembic's comparison: the search table (and FTS5's shadow tables) and index are not in the models."""
    if type_ == "table" and name is not None and name.startswith(FTS_TABLE):
        return False
    return not (type_ == "index" and name == PG_INDEX)
