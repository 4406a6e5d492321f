"""The export's page reads (app/export/rows.py `_page_rows`): on SQLite one JSON array per query, decoded and passed
through the columns' result processors. They must give exactly the rows, values and order the driver gives: booleans,
datetimes, JSON, NULLs, text that looks like JSON, and the query's ORDER BY. (On PostgreSQL they are the driver's
rows, so this checks that path too.)"""

from sqlalchemy import select

from app.export.rows import RAW_EXTRA, _json, _page_rows
from app.models import Annotation, Assignment, Prompt, Response


def test_page_rows_equal_the_drivers_rows(db, seed):
    rows = [
        {"id": f"p{i}", "prompt": f'{{"looks": "like json"}} {i}', "responses": ["a", '"quoted"\n', "é🧪", "null"]}
        for i in range(6)
    ]
    project = seed.project(rows)
    a, b = seed.annotators(2)
    for i in range(6):
        seed.label(project, f"p{i}", a, [[0], [1, 2], [3]], strength=0.5 if i % 2 else None)
        seed.label(
            project, f"p{i}", b, [[3], [2], [1], [0]], flag="harmful" if i == 2 else None, flag_reason="x" if i == 2 else None
        )
    db.commit()
    conn = db.connection()
    annotations = (
        select(Annotation.prompt_id, Annotation.id, Annotation.annotator_id, _json(Annotation.ranking), Annotation.strength)
        .add_columns(Annotation.flag, Annotation.none_acceptable, *RAW_EXTRA)
        .join(Assignment, Assignment.id == Annotation.assignment_id)
        .where(Annotation.project_id == project.id)
        .order_by(Annotation.prompt_id.desc(), Annotation.id)  # an order the table's own would not give
    )
    responses = select(Response.prompt_id, Response.id, Response.text, Response.model).order_by(Response.id.desc())
    prompts = select(Prompt.id, Prompt.external_id, _json(Prompt.messages), Prompt.is_chat, Prompt.is_gold).order_by(
        Prompt.external_id.desc()
    )
    for query in (annotations, responses, prompts):
        expected = [tuple(row) for row in conn.execute(query)]
        got = [tuple(row) for row in _page_rows(conn, query)]
        assert got == expected and len(got) > 1
        assert [tuple(map(type, row)) for row in got] == [tuple(map(type, row)) for row in expected]  # True, not 1


def test_an_empty_page_is_no_rows(db):
    assert list(_page_rows(db.connection(), select(Prompt.id).where(Prompt.id < 0))) == []
