"""Batch upload through the API, the form and the service: atomic, idempotent, with clear errors."""

import io

import orjson
import pytest
from sqlalchemy import func, select

from app.models import ImportBatch, Prompt, Response, Role
from app.prompts import service as prompts_service


def jsonl(*rows) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows)


def upload(client, project_id, content: bytes, filename="batch.jsonl", headers=None):
    return client.post(f"/api/projects/{project_id}/imports", files={"file": (filename, io.BytesIO(content))}, headers=headers)


def counts(db, project_id):
    db.rollback()
    prompts = db.scalar(select(func.count()).select_from(Prompt).where(Prompt.project_id == project_id))
    responses = db.scalar(select(func.count()).select_from(Response).join(Prompt).where(Prompt.project_id == project_id))
    return prompts, responses


@pytest.fixture
def staff(make_user, bearer):
    return bearer(make_user(Role.researcher))


class TestImport:
    def test_jsonl_with_chat_and_response_objects(self, client, db, make_project, staff):
        project = make_project()
        content = jsonl(
            {"id": "a", "prompt": "Hi?", "responses": ["r1", "r2", "r3", "r4"], "metadata": {"src": "x"}},
            {
                "id": "b",
                "prompt": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Why?"}],
                "responses": [{"text": "Because.", "model": "m-1", "metadata": {"t": 0.7}}, "No idea"],
            },
        )
        response = upload(client, project.id, content, headers=staff)
        assert response.status_code == 200, response.text
        assert response.json() | {"batch_id": None} == {
            "imported": 2,
            "skipped": 0,
            "references": 0,
            "errors": [],
            "total_errors": 0,
            "batch_id": None,
        }
        assert counts(db, project.id) == (2, 6)
        chat = db.scalar(select(Prompt).where(Prompt.external_id == "b"))
        assert chat.is_chat and chat.messages[1] == {"role": "user", "content": "Why?"}
        model = db.scalar(select(Response.model).where(Response.prompt_id == chat.id, Response.position == 0))
        assert model == "m-1"
        batch = db.scalar(select(ImportBatch))
        assert (batch.imported_count, batch.filename) == (2, "batch.jsonl")

    def test_json_array_and_csv(self, client, db, make_project, staff):
        project = make_project()
        array = orjson.dumps([{"id": "j1", "prompt": "p", "responses": ["a", "b"]}])
        assert upload(client, project.id, array, "batch.json", staff).json()["imported"] == 1
        csv = b'id,prompt,response_1,response_2,response_3\r\nc1,"multi\r\nline",x,y,\r\nc2,q,x,y,z\r\n'
        assert upload(client, project.id, csv, "batch.csv", staff).json()["imported"] == 2
        assert counts(db, project.id) == (3, 7)

    def test_any_error_imports_nothing_and_lists_all_errors(self, client, db, make_project, staff, monkeypatch):
        monkeypatch.setattr(prompts_service, "CHUNK_SIZE", 1000)  # chunks are written before the errors come
        project = make_project(kind="pairwise")
        rows = [{"id": f"ok{i}", "prompt": "p", "responses": ["a", "b"]} for i in range(2500)]  # spans chunks
        content = (
            jsonl(*rows)
            + b"\n"
            + jsonl(
                {"id": "bad1", "prompt": "p", "responses": ["a", "b", "c"]},
                {"id": "bad2", "prompt": "", "responses": ["a", "b"]},
            )
            + b"\n{not json"
        )
        response = upload(client, project.id, content, headers=staff)
        assert response.status_code == 422
        body = response.json()
        assert body["imported"] == 0 and body["total_errors"] == 3
        assert body["errors"][0].startswith('line 2501, field "responses"')
        assert "expected 2 responses" in body["errors"][0] or "2 responses" in body["errors"][0]
        assert body["errors"][1].startswith('line 2502, field "prompt"')
        assert body["errors"][2].startswith("line 2503")
        assert counts(db, project.id) == (0, 0)
        db.rollback()
        assert db.scalar(select(func.count()).select_from(ImportBatch)) == 0

    def test_bulk_writes_keep_each_response_with_its_prompt(self, client, db, make_project, staff, monkeypatch):
        monkeypatch.setattr(prompts_service, "CHUNK_SIZE", 3)  # several bulk writes, ids drawn per chunk
        project = make_project()
        rows = [
            {
                "id": f"q{i}",
                "prompt": f"prompt {i}",
                "responses": [f"{i}-a", {"text": f"{i}-b", "model": "m", "metadata": {"t": i}}],
                **({"metadata": {"n": i}} if i % 2 else {}),
            }
            for i in range(8)
        ]
        assert upload(client, project.id, jsonl(*rows), headers=staff).json()["imported"] == 8
        db.rollback()
        prompts = db.scalars(select(Prompt).where(Prompt.project_id == project.id).order_by(Prompt.external_id)).all()
        for prompt in prompts:
            i = int(prompt.external_id[1:])
            assert prompt.messages == [{"role": "user", "content": f"prompt {i}"}] and not prompt.is_chat
            assert prompt.metadata_ == ({"n": i} if i % 2 else None)
            assert (prompt.completed_count, prompt.active_count, prompt.target_overlap) == (0, 0, project.overlap)
            responses = db.scalars(select(Response).where(Response.prompt_id == prompt.id).order_by(Response.position)).all()
            assert [(r.text, r.model, r.metadata_) for r in responses] == [(f"{i}-a", None, None), (f"{i}-b", "m", {"t": i})]

    def test_reupload_skips_present_ids_and_content(self, client, db, make_project, staff):
        project = make_project()
        first = jsonl({"id": "a", "prompt": "p", "responses": ["x", "y"]}, {"prompt": "no id", "responses": ["x", "y"]})
        assert upload(client, project.id, first, headers=staff).json()["imported"] == 2
        again = first + b"\n" + jsonl({"id": "c", "prompt": "new", "responses": ["x", "y"]})
        body = upload(client, project.id, again, headers=staff).json()
        assert (body["imported"], body["skipped"]) == (1, 2)
        assert counts(db, project.id) == (3, 6)

    def test_same_id_in_other_project_is_independent(self, client, db, make_project, staff):
        one, two = make_project(), make_project()
        content = jsonl({"id": "a", "prompt": "p", "responses": ["x", "y"]})
        assert upload(client, one.id, content, headers=staff).json()["imported"] == 1
        assert upload(client, two.id, content, headers=staff).json()["imported"] == 1

    def test_duplicate_ids_in_file(self, client, make_project, staff):
        project = make_project()
        content = jsonl({"id": "a", "prompt": "p", "responses": ["x", "y"]}, {"id": "a", "prompt": "q", "responses": ["x", "y"]})
        body = upload(client, project.id, content, headers=staff).json()
        assert body["imported"] == 0 and "duplicate id" in body["errors"][0] and "line 2" in body["errors"][0]

    def test_upload_over_the_limit_is_413(self, client, make_project, staff, monkeypatch):
        from app.config import get_settings

        monkeypatch.setattr(get_settings(), "MAX_UPLOAD_MB", 0)
        response = upload(client, make_project().id, jsonl({"prompt": "p", "responses": ["x", "y"]}), headers=staff)
        assert response.status_code == 413 and "0 MB" in response.json()["detail"]

    def test_missing_file_is_400(self, client, make_project, staff):
        response = client.post(f"/api/projects/{make_project().id}/imports", headers=staff)
        assert response.status_code == 400 and "file" in response.json()["detail"]

    def test_annotators_cannot_upload(self, client, make_user, make_project, bearer):
        annotator = make_user(Role.annotator)
        project = make_project(members=[annotator])
        response = upload(client, project.id, jsonl({"prompt": "p", "responses": ["x", "y"]}), headers=bearer(annotator))
        assert response.status_code == 403

    def test_upload_form_shows_result_and_errors(self, client, make_user, make_project, login_as):
        project = make_project()
        browser = login_as(make_user(Role.admin))
        token = browser.headers["X-CSRF-Token"]

        def post(content):
            return browser.post(
                f"/projects/{project.id}/imports",
                data={"csrf_token": token},
                files={"file": ("b.jsonl", io.BytesIO(content))},
                headers={"accept": "text/html"},
            )

        ok = post(jsonl({"id": "a", "prompt": "p", "responses": ["x", "y"]}))
        assert ok.status_code == 200 and "Imported 1, skipped 0" in ok.text
        bad = post(b'{"id": "b", "prompt": "p", "responses": "nope"}')
        assert bad.status_code == 422 and "Nothing was imported" in bad.text and "line 1" in bad.text
