"""The import's bulk path (app/prompts/service.py `write_rows`): on SQLite one INSERT over a JSON array of the rows,
on PostgreSQL COPY. Every value comes back as it went in: text that looks like a number, a boolean or JSON stays text,
booleans and NULLs stay what they are, and a large batch is split across statements without losing a row."""

from sqlalchemy import select

from app.models import Prompt, Response
from app.prompts import service
from app.prompts.service import PROMPT_COLUMNS, RESPONSE_COLUMNS, write_rows

AWKWARD = [
    "123",
    "1e5",
    "true",
    "null",
    "",
    " ",
    '{"a": 1}',
    "[1, 2]",
    'quote " and \\ backslash',
    "line\nbreak\ttab",
    "emoji 🧪 中文",
    "é" * 3000,
]


def test_awkward_values_round_trip(db, make_project):
    project = make_project(kind="ranking")
    connection = db.connection()
    rows = [
        (
            900 + i,
            project.id,
            None,
            f"ext-{text[:100]}",
            f'[{{"role": "user", "content": "{i}"}}]',
            i % 2 == 0,
            None if i % 3 else '{"k": [1, 2.5, null]}',
            0,
            0,
            3,
            False,
            i == 1,
            True,
        )
        for i, text in enumerate(AWKWARD)
    ]
    write_rows(connection, "prompts", PROMPT_COLUMNS, rows)
    responses = [
        (900 + i, position, text, None if position else "model-é", None)
        for i, text in enumerate(AWKWARD)
        for position in range(2)
    ]
    write_rows(connection, "responses", RESPONSE_COLUMNS, responses)
    db.commit()
    stored = {p.id: p for p in db.scalars(select(Prompt).where(Prompt.project_id == project.id))}
    assert sorted(stored) == [900 + i for i in range(len(AWKWARD))]
    for i, text in enumerate(AWKWARD):
        prompt = stored[900 + i]
        assert prompt.external_id == f"ext-{text[:100]}"
        assert prompt.is_chat is (i % 2 == 0) and prompt.boosted is (i == 1) and prompt.visible is True
        assert prompt.metadata_ == (None if i % 3 else {"k": [1, 2.5, None]})
        assert prompt.messages == [{"role": "user", "content": str(i)}]
    texts = db.execute(select(Response.prompt_id, Response.position, Response.text, Response.model)).all()
    assert sorted(texts) == sorted(
        (900 + i, p, text, None if p else "model-é") for i, text in enumerate(AWKWARD) for p in range(2)
    )


def test_rows_beyond_one_statement_are_all_written(db, make_project, monkeypatch):
    monkeypatch.setattr(service, "SQLITE_ROWS_PER_STATEMENT", 7)  # several statements on SQLite (PostgreSQL: one COPY)
    project = make_project(kind="ranking")
    rows = [(5000 + i, project.id, None, f"p{i}", "[]", False, None, 0, 0, 3, False, False, True) for i in range(23)]
    write_rows(db.connection(), "prompts", PROMPT_COLUMNS, rows)
    db.commit()
    assert db.scalars(select(Prompt.external_id).where(Prompt.project_id == project.id).order_by(Prompt.id)).all() == [
        f"p{i}" for i in range(23)
    ]


def test_nothing_to_write_writes_nothing(db):
    write_rows(db.connection(), "prompts", PROMPT_COLUMNS, [])
    assert db.scalars(select(Prompt)).all() == []
