"""The schema exists only through Alembic, and the migrations match the models."""

import json

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app import migrate
from app.config import get_settings
from app.db import build_engine
from app.models import Base
from app.prompts.search import include_object


def test_migrations_match_the_models(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include_object})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_and_up_again(tmp_path):
    engine = build_engine(get_settings().model_copy(update={"DATABASE_URL": f"sqlite:///{tmp_path}/m.db"}))
    migrate.upgrade(engine)
    assert {"users", "prompts", "annotations", "assignments"} <= set(inspect(engine).get_table_names())
    config = migrate.alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(create_engine(f"sqlite:///{tmp_path}/m.db")).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert "annotations" in inspect(engine).get_table_names()
    engine.dispose()


def test_reference_labels_move_to_their_table_and_back(tmp_path):
    """0011 copies each prompt's reference into reference_labels (unnamed ones as "reference") and drops the columns
    in place (the prompts, their responses and the full-text index survive); downgrade copies one source back."""
    from sqlalchemy import text

    engine = build_engine(get_settings().model_copy(update={"DATABASE_URL": f"sqlite:///{tmp_path}/r.db"}))
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007_label_revisions")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO projects (id, name, kind, overlap, allow_ties, guidelines, created_at) VALUES (1, 'p', 'pairwise', 1, 0, '', '2026-12-01')"
            )
        )
        for pid, ranking, source in ((1, "[[2], [1]]", "trl: a.jsonl"), (2, "[[3, 4]]", None), (3, None, None)):
            c.execute(
                text(
                    "INSERT INTO prompts (id, project_id, external_id, messages, is_chat, completed_count, active_count, "
                    "target_overlap, is_gold, boosted, reference_ranking, reference_source) "
                    "VALUES (:id, 1, :ext, :messages, 0, 0, 0, 1, 0, 0, :ranking, :source)"
                ),
                {
                    "id": pid,
                    "ext": f"e{pid}",
                    "messages": f'[{{"role": "user", "content": "word{pid}"}}]',
                    "ranking": ranking,
                    "source": source,
                },
            )
            c.execute(text("INSERT INTO responses (prompt_id, position, text) VALUES (:p, 0, 'x'), (:p, 1, 'y')"), {"p": pid})
    migrate.upgrade(engine)
    with engine.connect() as c:
        rows = c.execute(text("SELECT prompt_id, source, ranking FROM reference_labels ORDER BY prompt_id")).all()
        assert [(p, s, json.loads(r)) for p, s, r in rows] == [(1, "trl: a.jsonl", [[2], [1]]), (2, "reference", [[3, 4]])]
        assert "reference_ranking" not in {col["name"] for col in inspect(c).get_columns("prompts")}
        assert c.execute(text("SELECT count(*) FROM responses")).scalar() == 6
        assert c.execute(text("SELECT rowid FROM prompts_fts WHERE prompts_fts MATCH 'word2'")).scalars().all() == [2]
    with engine.begin() as c:  # a second source on prompt 1, newer: the downgrade keeps the first
        c.execute(
            text(
                "INSERT INTO reference_labels (prompt_id, source, ranking, created_at) VALUES (1, 'judge', '[[1], [2]]', '2026-12-01')"
            )
        )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007_label_revisions")
    with engine.connect() as c:
        back = c.execute(text("SELECT id, reference_ranking, reference_source FROM prompts ORDER BY id")).all()
        assert [(i, r and json.loads(r), s) for i, r, s in back] == [
            (1, [[2], [1]], "trl: a.jsonl"),
            (2, [[3, 4]], "reference"),
            (3, None, None),
        ]
        assert c.execute(text("SELECT count(*) FROM responses")).scalar() == 6
    engine.dispose()
