"""Awkward files end to end, through the upload API: what parses is stored exactly, what doesn't is a
422 naming the line, and nothing of a failed upload is stored (the parser's own cases: tests/prompts)."""

import io

import orjson
import pytest
from sqlalchemy import func, select

from app.models import Annotation, ImportBatch, LoginAttempt, Prompt, Response, Role
from tests.conftest import csrf_from


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


# --- Every bad input is a 4xx (PostgreSQL text can't hold NUL; columns have widths), nothing stored ---------


def batch_count(db) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(ImportBatch))


def prompt_count(db) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Prompt))


def record(**fields) -> bytes:
    return orjson.dumps({"prompt": "p", "responses": ["x", "y"]} | fields) + b"\n"


def test_a_nul_in_the_login_email_is_a_422_naming_it(client, db):
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"email": "a\x00@example.org", "password": "pw", "csrf_token": token})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "email" and "NUL" in response.json()["errors"][0]["message"]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(LoginAttempt)) == 0


@pytest.fixture
def task(client, make_user, make_project, bearer):
    """A researcher's one-prompt upload, leased to an annotator: (task, the annotator's headers)."""
    annotator = make_user(Role.annotator)
    project = make_project(members=[annotator])
    researcher = bearer(make_user(Role.researcher))
    assert upload(client, project.id, record(id="t", responses=["x", "y", "z", "w"]), "t.jsonl", researcher).status_code == 200
    headers = bearer(annotator)
    return client.get(f"/api/projects/{project.id}/next", headers=headers).json(), headers


@pytest.mark.parametrize("field", ["rationale", "flag_reason"])
def test_a_nul_in_a_rationale_is_a_422_and_nothing_is_stored(client, db, task, field):
    task, headers = task
    body = {
        "ranking": [[r["id"]] for r in task["responses"]],
        field: "why\x00",
        "flag": "other" if field == "flag_reason" else None,
    }
    response = client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Annotation)) == 0


def test_a_nul_in_a_skip_reason_is_a_422_and_the_task_stays_open(client, db, task):
    task, headers = task
    response = client.post(f"/api/tasks/{task['task_id']}/skip", json={"reason": "\x00"}, headers=headers)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "reason", response.text
    done = client.post(
        f"/api/tasks/{task['task_id']}/annotations", json={"ranking": [[r["id"]] for r in task["responses"]]}, headers=headers
    )
    assert done.status_code == 201, done.text


def test_a_nul_in_the_upload_file_name_is_a_422(client, db, make_user, make_project, bearer):
    project = make_project()
    # Raw: HTTP clients percent-encode the NUL (httpx does), a hand-made request need not.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="bad\x00name.jsonl"\r\n\r\n' + record() + b"\r\n--b--\r\n"
    )
    headers = bearer(make_user(Role.researcher)) | {"content-type": "multipart/form-data; boundary=b"}
    response = client.post(f"/api/projects/{project.id}/imports", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == ["file name: contains a NUL character (\\x00) at position 4; remove it"]
    assert batch_count(db) == 0


@pytest.mark.parametrize(
    ("content", "filename", "expected"),
    [
        (
            record(responses=[{"text": "x", "model": "m" * 201}, "y"]),
            "long.jsonl",
            'line 1, field "responses[0].model": is 201 characters long; the limit is 200 (MAX_MODEL_NAME_CHARS)',
        ),
        (
            b"[" + record(metadata={"a": orjson.loads("[" * 35 + "1" + "]" * 35)}) + b"]",
            "deep.json",
            'item 1 (line 1), field "metadata": nested deeper than 32 (MAX_METADATA_DEPTH)',
        ),
        (
            b'{"prompt": "p", "responses": ["x", "y"], "metadata": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}\n",
            "deeper.jsonl",
            'line 1, field "metadata": nested deeper than 32 (MAX_METADATA_DEPTH)',
        ),
    ],
    ids=["model name over 200", "json array 36 deep", "jsonl 300 deep"],
)
def test_uploads_past_a_limit_are_a_422_and_nothing_is_stored(
    client, db, make_user, make_project, bearer, content, filename, expected
):
    """On PostgreSQL the long model name failed the write (500); 255 levels and more failed to encode (500)."""
    project = make_project()
    response = upload(client, project.id, content, filename, bearer(make_user(Role.researcher)))
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [expected]
    assert prompt_count(db) == 0 and batch_count(db) == 0


def _parquet(table) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def test_parquet_that_python_cannot_read_is_a_422(client, db, make_user, make_project, bearer):
    import pyarrow as pa

    project = make_project()
    headers = bearer(make_user(Role.researcher))
    not_utf8 = pa.table({"prompt": pa.array([b"caf\xe9"], pa.binary()).view(pa.string()), "responses": [["x", "y"]]})
    response = upload(client, project.id, _parquet(not_utf8), "bad.parquet", headers)
    assert response.status_code == 422 and response.json()["errors"] == [
        'row 1, field "prompt": holds text that is not valid UTF-8'
    ]
    twice = pa.StructArray.from_arrays([pa.array([1]), pa.array([2])], fields=[pa.field("a", pa.int64())] * 2)
    repeated = pa.table({"prompt": ["p"], "responses": [["x", "y"]], "metadata": twice})
    response = upload(client, project.id, _parquet(repeated), "twice.parquet", headers)
    assert response.status_code == 422 and response.json()["errors"] == ['field "metadata": repeats the field name "a"']
    assert prompt_count(db) == 0 and batch_count(db) == 0


def test_errors_never_echo_a_whole_input(client, task):
    """A ranking of 100,000 bad ids (within the body limit) was answered with an error per id, larger than the input."""
    task, headers = task
    body = orjson.dumps({"ranking": [["x" * 5] * 100_000]})
    response = client.post(
        f"/api/tasks/{task['task_id']}/annotations", content=body, headers=headers | {"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert len(response.content) < 20_000, len(response.content)
    assert response.json()["errors"][-1] == "… and 99,950 more"


def test_a_body_that_is_not_json_is_a_422_naming_the_line_column_and_reason(client, db, task):
    task, headers = task
    body = b'{\n  "ranking": [[1], [2]]\n  "rationale": "why"\n}'  # no comma after the ranking
    response = client.post(
        f"/api/tasks/{task['task_id']}/annotations", content=body, headers=headers | {"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "body", "message": "not valid JSON at line 3, column 3: Expecting ',' delimiter"}
    ]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Annotation)) == 0


def test_a_30000_deep_body_is_a_400_saying_it_nests_too_deeply_and_nothing_is_stored(client, db, task):
    task, headers = task
    body = b'{"ranking": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    response = client.post(
        f"/api/tasks/{task['task_id']}/annotations", content=body, headers=headers | {"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body" and "nests too deeply" in response.json()["detail"]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Annotation)) == 0


@pytest.mark.parametrize(
    "body, status, field, message",
    [
        (b'{"ranking": [["\xe9"]]}', 400, "body", "it is not UTF-8 text (byte 0xE9 at offset 15)"),  # Latin-1
        (b"", 422, "body", "Field required"),
        (b"null", 422, "body", "Input should be a valid dictionary"),
        (b"[[1], [2]]", 422, "body", "Input should be a valid dictionary"),
    ],
    ids=["latin-1", "empty", "null", "array"],
)
def test_a_body_that_is_not_a_json_object_names_the_body(client, db, task, body, status, field, message):
    """Never FastAPI's bare "There was an error parsing the body", nor a field named "" (a body that is no object)."""
    task, headers = task
    response = client.post(
        f"/api/tasks/{task['task_id']}/annotations", content=body, headers=headers | {"content-type": "application/json"}
    )
    assert response.status_code == status
    (error,) = response.json()["errors"]
    assert error["field"] == field and message in error["message"], error
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Annotation)) == 0


@pytest.mark.parametrize("path", ["imports", "reward-models?name=rm-1"])
@pytest.mark.parametrize(
    "files",
    [{"other": ("a.jsonl", b"{}")}, {"file": (None, "not a file")}, {"file": ("", b"{}")}],
    ids=["elsewhere", "text", "unnamed"],
)
def test_an_upload_without_its_file_is_a_400_naming_the_field(client, make_user, make_project, bearer, path, files):
    project = make_project()
    response = client.post(f"/api/projects/{project.id}/{path}", files=files, headers=bearer(make_user(Role.researcher)))
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "file", "message": "Choose a file to upload (multipart field `file`)"}]


# Free text an admin types goes through the same rule (app.text): project and user fields, token names and the
# e-mail looked up when adding a member are 422s naming the field, on both databases, and nothing is stored.
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/projects", {"name": "p\x00"}, "name"),
        ("/api/projects", {"name": "p", "guidelines": "read \x00 this"}, "guidelines"),
        ("/api/projects", {"name": "p", "kind": "pairwise", "strength_scale": ["much\x00", "a bit"]}, "strength_scale.0"),
        ("/api/users", {"email": "a\x00b@example.org", "role": "annotator"}, "email"),
        ("/api/users", {"email": "ab@example.org", "name": "A\x00", "role": "annotator"}, "name"),
        ("/api/me/tokens", {"name": "ci\x00"}, "name"),
    ],
)
def test_a_nul_in_admin_text_is_a_422_naming_the_field(client, db, make_user, bearer, path, body, field):
    from app.models import ApiToken, Project, User

    headers = bearer(make_user(Role.admin))
    db.rollback()
    before = [db.scalar(select(func.count()).select_from(model)) for model in (Project, User, ApiToken)]
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert any(e["field"].endswith(field) and "NUL" in e["message"] for e in response.json()["errors"]), response.json()
    db.rollback()
    assert [db.scalar(select(func.count()).select_from(model)) for model in (Project, User, ApiToken)] == before


def test_a_nul_in_the_member_email_form_is_a_422(client, make_user, make_project, login_as):
    admin = login_as(make_user(Role.admin))
    project = make_project()
    response = admin.post(f"/projects/{project.id}/members", data={"email": "x\x00@example.org"})
    assert response.status_code == 422, response.text
