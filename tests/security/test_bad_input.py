"""Awkward files end to end, through the upload API: what parses is stored exactly, what doesn't is a
422 naming the line, and nothing of a failed upload is stored (the parser's own cases: tests/prompts)."""

import io

from sqlalchemy import func, select

from app.models import Prompt, Response, Role


def upload(client, project_id, content: bytes, filename: str, headers):
    return client.post(f"/api/projects/{project_id}/imports", headers=headers, files={"file": (filename, io.BytesIO(content))})


def stored(db, project_id) -> dict[str, list[str]]:
    db.rollback()
    rows = db.execute(
        select(Prompt.external_id, Response.text)
        .join(Response)
        .where(Prompt.project_id == project_id)
        .order_by(Prompt.external_id, Response.position)
    ).all()
    out: dict[str, list[str]] = {}
    for external_id, text in rows:
        out.setdefault(external_id, []).append(text)
    return out


def test_csv_with_bom_crlf_multiline_cells_and_long_responses(client, db, make_user, make_project, bearer):
    project = make_project()
    long = "ü" * 10_000
    unbroken = "y" * 10_000
    content = (
        "\ufeffid,prompt,response_1,response_2\r\n"
        f'a,"Line one\r\nline two, with a comma and ""quotes""",{long},"first\r\n\r\nsecond"\r\n'
        f"b,plain,{unbroken},short\r\n"
    ).encode()
    response = upload(client, project.id, content, "batch.csv", bearer(make_user(Role.researcher)))
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 2
    rows = stored(db, project.id)
    assert rows["a"][0] == long and rows["b"] == [unbroken, "short"]
    assert rows["a"][1].splitlines() == ["first", "", "second"]
    db.rollback()
    prompt = db.scalar(select(Prompt).where(Prompt.external_id == "a"))
    assert prompt.messages[0]["content"].splitlines() == ["Line one", 'line two, with a comma and "quotes"']


def test_jsonl_with_bom_and_crlf(client, db, make_user, make_project, bearer):
    project = make_project()
    content = b'\xef\xbb\xbf{"id": "a", "prompt": "p", "responses": ["x", "y"]}\r\n\r\n{"id": "b", "prompt": "q", "responses": ["x", "z"]}\r\n'
    response = upload(client, project.id, content, "batch.jsonl", bearer(make_user(Role.researcher)))
    assert response.status_code == 200 and response.json()["imported"] == 2
    assert stored(db, project.id) == {"a": ["x", "y"], "b": ["x", "z"]}


def test_latin1_bytes_fail_clearly_and_store_nothing(client, db, make_user, make_project, bearer):
    project = make_project()
    content = (
        '{"id": "a", "prompt": "ok", "responses": ["x", "y"]}\n{"id": "b", "prompt": "café", "responses": ["crème", "brûlée"]}\n'
    ).encode("latin-1")
    response = upload(client, project.id, content, "batch.jsonl", bearer(make_user(Role.researcher)))
    assert response.status_code == 422
    body = response.json()
    assert body["imported"] == 0 and body["detail"] == "Nothing imported: 1 error(s) in batch.jsonl"
    assert body["errors"] == ["line 2: not valid UTF-8 (byte 0xe9 at position 27); save the file as UTF-8"]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Prompt)) == 0


def test_latin1_csv_names_the_line(client, make_user, make_project, bearer):
    project = make_project()
    content = 'prompt,response_1,response_2\nq,a,b\nq2,"na\u00efve",c\n'.encode("latin-1")
    response = upload(client, project.id, content, "batch.csv", bearer(make_user(Role.researcher)))
    assert response.status_code == 422
    assert response.json()["errors"][0].startswith("line 3: not valid UTF-8")


def test_the_schema_documents_the_import_errors(app):
    operation = app.openapi()["paths"]["/api/projects/{project_id}/imports"]["post"]
    failed = operation["responses"]["422"]
    assert failed["description"].startswith("Nothing imported")
    assert failed["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert app.openapi()["components"]["schemas"]["Error"]["required"] == ["detail"]
