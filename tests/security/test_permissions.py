"""Permission matrix: every route of the app, called by every kind of caller, with real ids.

A route missing from EXPECTED fails `test_every_route_has_an_entry`, so a new route needs a row here
(and in docs/permissions.md: `python tests/security/test_permissions.py` rewrites it from this table).
"""

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.routing import _IncludedRouter
from fastapi.testclient import TestClient
from starlette.routing import Mount

ROLES = ("anonymous", "member", "outsider", "researcher", "admin")
ROLE_TITLES = {
    "anonymous": "anonymous",
    "member": "annotator (member)",
    "outsider": "annotator (not a member)",
    "researcher": "researcher",
    "admin": "admin",
}
DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
SECRET = "OTHER-ANNOTATORS-RATIONALE-7f3a"  # the other annotator's label; must never reach `member`

# method path -> expected status for (anonymous, member, outsider, researcher, admin).
# Calls send a bearer token (anonymous: nothing) and no Accept: text/html, so errors come back as JSON.
EXPECTED: dict[str, tuple[int, int, int, int, int]] = {
    # public
    "GET /login": (200, 303, 303, 303, 303),  # logged in: redirected on
    "POST /login": (303, 303, 303, 303, 303),  # valid credentials (+ CSRF token of the form)
    "POST /logout": (303, 303, 303, 303, 303),
    "GET /healthz": (200, 200, 200, 200, 200),
    "GET /openapi.json": (200, 200, 200, 200, 200),
    "GET /docs": (200, 200, 200, 200, 200),
    "GET /redoc": (200, 200, 200, 200, 200),
    "GET /static": (200, 200, 200, 200, 200),
    "GET /static/api-docs": (200, 200, 200, 200, 200),  # the scripts of /docs and /redoc
    # users
    "GET /admin/users": (401, 403, 403, 403, 200),
    "POST /admin/users": (401, 403, 403, 403, 303),
    "POST /admin/users/{user_id}/active": (401, 403, 403, 403, 303),
    "POST /admin/users/{user_id}/sign-out": (401, 403, 403, 403, 303),
    "GET /api/me": (401, 200, 200, 200, 200),
    "GET /api/users": (401, 403, 403, 403, 200),
    "POST /api/users": (401, 403, 403, 403, 201),
    "POST /api/users/{user_id}/sign-out": (401, 403, 403, 403, 204),
    "POST /api/me/tokens": (401, 201, 201, 201, 201),
    "GET /api/me/tokens": (401, 200, 200, 200, 200),
    "DELETE /api/me/tokens/{token_id}": (401, 204, 404, 404, 204),  # the member's own token
    "GET /account": (401, 200, 200, 200, 200),
    "POST /account/password": (401, 303, 303, 303, 303),  # each caller changes their own
    "POST /api/me/password": (401, 204, 204, 204, 204),
    "POST /admin/users/{user_id}/password-reset": (401, 403, 403, 403, 200),  # the code is shown on the answer
    "POST /api/users/{user_id}/password-reset": (401, 403, 403, 403, 201),
    # a reset code's use is open to anyone (they cannot log in); a wrong code: the form again, or a 422
    "GET /reset-password": (200, 200, 200, 200, 200),
    "POST /reset-password": (400, 400, 400, 400, 400),
    "POST /api/password-reset": (422, 422, 422, 422, 422),
    # projects
    "GET /": (401, 200, 200, 200, 200),
    "GET /projects/new": (401, 403, 403, 403, 200),
    "POST /projects/new": (401, 403, 403, 403, 303),
    "GET /projects/{project_id}": (401, 200, 404, 200, 200),
    "POST /projects/{project_id}/members": (401, 403, 404, 403, 303),
    "POST /projects/{project_id}/members/{user_id}/remove": (401, 403, 404, 403, 303),
    "POST /api/projects": (401, 403, 403, 403, 201),
    "GET /api/projects": (401, 200, 200, 200, 200),
    "GET /api/projects/{project_id}": (401, 200, 404, 200, 200),
    "GET /api/projects/{project_id}/stats": (401, 403, 404, 200, 200),
    "GET /api/projects/{project_id}/progress": (401, 403, 404, 200, 200),
    "PUT /api/projects/{project_id}/members/{user_id}": (401, 403, 404, 403, 204),
    "DELETE /api/projects/{project_id}/members/{user_id}": (401, 403, 404, 403, 204),
    # editing, archiving, deleting (as creating: admins); the audit log: staff
    "GET /projects/{project_id}/edit": (401, 403, 404, 403, 200),
    "POST /projects/{project_id}/edit": (401, 403, 404, 403, 303),
    "POST /projects/{project_id}/archive": (401, 403, 404, 403, 303),
    "POST /projects/{project_id}/unarchive": (401, 403, 404, 403, 303),
    "POST /projects/{project_id}/delete": (401, 403, 404, 403, 303),
    "PATCH /api/projects/{project_id}": (401, 403, 404, 403, 200),
    "POST /api/projects/{project_id}/archive": (401, 403, 404, 403, 200),
    "POST /api/projects/{project_id}/unarchive": (401, 403, 404, 403, 200),
    "DELETE /api/projects/{project_id}": (401, 403, 404, 403, 204),
    "GET /api/projects/{project_id}/audit": (401, 403, 404, 200, 200),
    # imports
    "POST /api/projects/{project_id}/imports": (401, 403, 404, 200, 200),
    "POST /projects/{project_id}/imports": (401, 403, 404, 200, 200),
    # annotation (labelling needs membership, whatever the role; tasks are the member's own)
    "GET /api/projects/{project_id}/next": (401, 200, 404, 403, 403),
    "GET /api/tasks/{task_id}": (401, 200, 404, 404, 404),
    "POST /api/tasks/{task_id}/annotations": (401, 201, 404, 404, 404),
    # revising one's own labels (the member's labelled task)
    "PUT /api/tasks/{task_id}/annotations": (401, 200, 404, 404, 404),
    "GET /api/me/annotations": (401, 200, 404, 403, 403),  # ?project_id=
    "GET /projects/{project_id}/my-labels": (401, 200, 404, 403, 403),
    "GET /projects/{project_id}/my-labels/{task_id}": (401, 200, 404, 403, 403),
    "POST /api/tasks/{task_id}/skip": (401, 204, 404, 404, 404),
    "GET /projects/{project_id}/annotate": (401, 200, 404, 403, 403),
    "GET /projects/{project_id}/annotate/prefetch": (401, 200, 404, 403, 403),
    # agreement and export (staff only)
    "GET /api/projects/{project_id}/agreement": (401, 403, 404, 200, 200),
    "PUT /api/projects/{project_id}/prompts/{prompt_id}/gold": (401, 403, 404, 200, 200),
    "GET /projects/{project_id}/agreement": (401, 403, 404, 200, 200),
    "GET /projects/{project_id}/prompts/{prompt_id}": (401, 403, 404, 200, 200),
    "POST /projects/{project_id}/prompts/{prompt_id}/gold": (401, 403, 404, 303, 303),
    "GET /api/projects/{project_id}/export": (401, 403, 404, 200, 200),
    # model leaderboard (staff only)
    "GET /api/projects/{project_id}/leaderboard": (401, 403, 404, 200, 200),
    "GET /projects/{project_id}/leaderboard": (401, 403, 404, 200, 200),
    # reward models (staff only): a score file under a name, its report, side by side, delete
    "GET /api/projects/{project_id}/reward-models": (401, 403, 404, 200, 200),
    "POST /api/projects/{project_id}/reward-models": (401, 403, 404, 201, 201),
    "GET /api/projects/{project_id}/reward-models/{name}": (401, 403, 404, 200, 200),
    "DELETE /api/projects/{project_id}/reward-models/{name}": (401, 403, 404, 204, 204),
    "GET /projects/{project_id}/reward-models": (401, 403, 404, 200, 200),
    "POST /projects/{project_id}/reward-models": (401, 403, 404, 200, 200),
    "GET /projects/{project_id}/reward-models/{name}": (401, 403, 404, 200, 200),
    "POST /projects/{project_id}/reward-models/{name}/delete": (401, 403, 404, 303, 303),
    "GET /api/projects/{project_id}/export/preview": (401, 403, 404, 200, 200),
    "GET /projects/{project_id}/export": (401, 403, 404, 303, 303),  # good options: on to the download
    "GET /api/projects/{project_id}/prompts": (401, 403, 404, 200, 200),
    "GET /projects/{project_id}/prompts": (401, 403, 404, 200, 200),
}


def iter_routes(routes, prefix: str = ""):
    """(method, path) of every route, descending into included routers (FastAPI ≥0.16x keeps them
    as `_IncludedRouter` entries in app.routes rather than flattening them)."""
    for route in routes:
        if isinstance(route, _IncludedRouter):
            yield from iter_routes(route.original_router.routes, prefix + (route.include_context.prefix or ""))
        elif isinstance(route, Mount):
            yield "GET", prefix + route.path
        else:
            for method in sorted(getattr(route, "methods", None) or ()):
                if method != "HEAD":
                    yield method, prefix + route.path


def app_routes(app) -> set[str]:
    return {f"{m} {p}" for m, p in iter_routes(app.routes)}


def render_doc() -> str:
    lines = [
        "# Permissions",
        "",
        "Expected HTTP status of every route for each kind of caller, with real ids (a project the",
        "member annotator belongs to, its prompts, the member's own task and API token).",
        "Generated from `EXPECTED` in `tests/security/test_permissions.py`, which checks both the app",
        "and this file (`python tests/security/test_permissions.py` rewrites it).",
        "",
        "401: not logged in. 403: role not allowed. 404: not visible to this caller (annotators cannot",
        "probe projects they are not in, nor anyone else's tasks). 303: form posts redirect on success.",
        "Anonymous browsers asking for HTML are redirected to the login page instead of a 401.",
        "",
        "| route | " + " | ".join(ROLE_TITLES[r] for r in ROLES) + " |",
        "|---|" + "---|" * len(ROLES),
    ]
    for key, statuses in EXPECTED.items():
        lines.append(f"| `{key}` | " + " | ".join(str(s) for s in statuses) + " |")
    return "\n".join(lines) + "\n"


# --- the world every call runs against -------------------------------------------------------------


@dataclass
class World:
    users: dict
    headers: dict  # role -> request headers
    project_id: int
    prompt_id: int  # labelled by the other annotator
    annotation_id: int  # the other annotator's label
    task_id: int  # the member's leased task
    task_ranking: list
    labelled_task_id: int  # the member's labelled task (revising)
    labelled_ranking: list
    member_token_id: int
    other_member_id: int
    project_name: str  # what a deletion must confirm


def _jsonl(n: int, k: int = 3, tag: str = "p") -> bytes:
    return b"".join(
        json.dumps({"id": f"{tag}{i}", "prompt": f"prompt {tag}{i}", "responses": [f"r{i}-{j}" for j in range(k)]}).encode()
        + b"\n"
        for i in range(n)
    )


RM_NAME = "rm-check"


def _scores() -> bytes:
    """A reward model's scores for the world's prompts (_jsonl(3)): each response by its index as uploaded."""
    rows = [{"prompt_id": f"p{i}", "response": j, "score": float(j)} for i in range(3) for j in range(3)]
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


@pytest.fixture
def world(client, db, make_user, make_project, bearer) -> World:
    from app.models import ApiToken, Role
    from app.prompts import service as prompts_service

    users = {
        "member": make_user(Role.annotator),
        "other": make_user(Role.annotator),
        "outsider": make_user(Role.annotator),
        "researcher": make_user(Role.researcher),
        "admin": make_user(Role.admin),
    }
    project = make_project(members=[users["member"], users["other"]], overlap=3)
    db.commit()
    result = prompts_service.import_batch(
        session=db, project=project, stream=io.BytesIO(_jsonl(3)), filename="p.jsonl", uploaded_by=None
    )
    assert result.ok, result
    db.commit()
    headers = {role: bearer(users[role]) for role in ("member", "outsider", "researcher", "admin")}
    headers["anonymous"] = {}
    other = bearer(users["other"])
    task = client.get(f"/api/projects/{project.id}/next", headers=other).json()
    ranking = [[r["id"]] for r in task["responses"]]
    stored = client.post(
        f"/api/tasks/{task['task_id']}/annotations", headers=other, json={"ranking": ranking, "rationale": SECRET}
    )
    assert stored.status_code == 201, stored.text
    labelled = client.get(f"/api/projects/{project.id}/next", headers=headers["member"]).json()
    labelled_ranking = [[r["id"]] for r in labelled["responses"]]
    own = client.post(
        f"/api/tasks/{labelled['task_id']}/annotations", headers=headers["member"], json={"ranking": labelled_ranking}
    )
    assert own.status_code == 201, own.text
    mine = client.get(f"/api/projects/{project.id}/next", headers=headers["member"]).json()
    db.rollback()
    from sqlalchemy import select

    token_id = db.scalar(select(ApiToken.id).where(ApiToken.user_id == users["member"].id))
    scored = client.post(
        f"/api/projects/{project.id}/reward-models",
        params={"name": RM_NAME},
        files={"file": ("rm.jsonl", _scores(), "application/json")},
        headers=headers["admin"],
    )
    assert scored.status_code == 201, scored.text
    return World(
        users=users,
        headers=headers,
        project_id=project.id,
        prompt_id=task["prompt_id"],
        annotation_id=stored.json()["id"],
        task_id=mine["task_id"],
        task_ranking=[[r["id"]] for r in mine["responses"]],
        labelled_task_id=labelled["task_id"],
        labelled_ranking=labelled_ranking,
        member_token_id=token_id,
        other_member_id=users["other"].id,
        project_name=project.name,
    )


def call(client: TestClient, key: str, w: World, role: str):
    method, path = key.split(" ", 1)
    ids = {
        "project_id": w.project_id,
        "prompt_id": w.prompt_id,
        "task_id": w.task_id,
        "token_id": w.member_token_id,
        "user_id": w.other_member_id,
    }
    kwargs: dict = {"headers": dict(w.headers[role]), "follow_redirects": False}
    if "/reward-models" in path:
        ids["name"] = RM_NAME
        scores = ("rm.jsonl", _scores(), "application/json")
        # The world has it; on a delete route the researcher's call just before the admin's deleted it.
        if method in ("DELETE", "POST") and path.endswith("{name}" if method == "DELETE" else "/delete") and role == "admin":
            stored = client.post(
                f"/api/projects/{w.project_id}/reward-models",
                params={"name": RM_NAME, "replace": "true"},
                files={"file": scores},
                headers=w.headers["admin"],
            )
            assert stored.status_code == 201, stored.text
        elif key == "POST /api/projects/{project_id}/reward-models":
            kwargs["params"], kwargs["files"] = {"name": RM_NAME, "replace": "true"}, {"file": scores}
        elif key == "POST /projects/{project_id}/reward-models":
            kwargs["data"], kwargs["files"] = {"name": RM_NAME, "replace": "true"}, {"file": scores}
    if key == "POST /login":
        page = client.get("/login", headers=kwargs["headers"], follow_redirects=False)
        token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0] if page.status_code == 200 else ""
        from tests.conftest import PASSWORD

        kwargs["data"] = {"email": w.users["admin"].email, "password": PASSWORD, "csrf_token": token}
    elif key == "GET /static":
        path = "/static/css/" + sorted(p.name for p in (Path(__file__).resolve().parents[2] / "static" / "css").iterdir())[0]
    elif key == "GET /static/api-docs":
        path = "/static/api-docs/swagger-ui.css"
    elif key == "POST /admin/users":
        kwargs["data"] = {"email": "new@example.org", "role": "annotator", "password": "a long enough password"}
    elif key == "POST /admin/users/{user_id}/active":
        kwargs["data"] = {"active": "true"}
    elif key == "POST /api/users":
        kwargs["json"] = {"email": "new@example.org", "role": "annotator", "password": "a long enough password"}
    elif key in ("POST /account/password", "POST /reset-password"):
        from tests.conftest import PASSWORD

        new = "a long enough new password"
        kwargs["data"] = {"current_password": PASSWORD, "code": "not a code", "new_password": new, "new_password_again": new}
    elif key == "POST /api/me/password":
        from tests.conftest import PASSWORD

        kwargs["json"] = {"current_password": PASSWORD, "new_password": "a long enough new password"}
    elif key == "POST /api/password-reset":
        kwargs["json"] = {"code": "not a code", "new_password": "a long enough new password"}
    elif key == "POST /api/me/tokens":
        kwargs["json"] = {"name": "script"}
    elif key == "POST /projects/new":
        kwargs["data"] = {"name": "new project", "kind": "ranking", "overlap": "2"}
    elif key == "POST /projects/{project_id}/members":
        kwargs["data"] = {"email": w.users["outsider"].email}
    elif key == "PUT /api/projects/{project_id}/members/{user_id}":
        ids["user_id"] = w.users["outsider"].id
    elif key == "POST /api/projects":
        kwargs["json"] = {"name": "new project", "kind": "ranking"}
    elif key == "POST /projects/{project_id}/edit":
        kwargs["data"] = {"name": "edited", "overlap": "4"}
    elif key == "PATCH /api/projects/{project_id}":
        kwargs["json"] = {"overlap": 4}
    elif key in ("POST /projects/{project_id}/delete", "DELETE /api/projects/{project_id}"):
        kwargs["data" if key.startswith("POST") else "params"] = {"confirm": w.project_name}
    elif key.endswith("/imports"):
        kwargs["files"] = {"file": ("more.jsonl", _jsonl(2, tag="q"), "application/json")}
    elif key == "POST /api/tasks/{task_id}/annotations":
        kwargs["json"] = {"ranking": w.task_ranking}
    elif key in ("PUT /api/tasks/{task_id}/annotations", "GET /projects/{project_id}/my-labels/{task_id}"):
        ids["task_id"] = w.labelled_task_id  # revising needs a label
        if method == "PUT":
            kwargs["json"] = {"ranking": w.labelled_ranking[::-1]}
    elif key == "GET /api/me/annotations":
        kwargs["params"] = {"project_id": w.project_id}
    elif key == "POST /api/tasks/{task_id}/skip":
        kwargs["json"] = {"reason": "unsure"}
    elif key == "PUT /api/projects/{project_id}/prompts/{prompt_id}/gold":
        kwargs["json"] = {"ranking": None}
    elif key == "POST /projects/{project_id}/prompts/{prompt_id}/gold":
        kwargs["data"] = {"annotation_id": str(w.annotation_id)}
    return client.request(method, path.format(**ids), **kwargs)


# --- tests ------------------------------------------------------------------------------------------


def test_every_route_has_an_entry(app):
    routes = app_routes(app)
    assert sorted(routes - EXPECTED.keys()) == [], "routes without an entry in EXPECTED: add one"
    assert sorted(EXPECTED.keys() - routes) == [], "entries in EXPECTED for routes that no longer exist"


def test_walk_finds_every_api_route(app):
    """The walk through nested routers finds everything the OpenAPI schema lists."""
    schema_routes = {f"{m.upper()} {p}" for p, ops in app.openapi()["paths"].items() for m in ops}
    assert schema_routes and schema_routes <= app_routes(app)


def test_doc_matches_table():
    assert DOC.read_text() == render_doc(), "docs/permissions.md is stale: run python tests/security/test_permissions.py"


@pytest.mark.parametrize("key", list(EXPECTED))
def test_permission_matrix(app, world, key):
    actual = {}
    for role in ROLES:
        # A fresh client per caller (no shared cookies). Every call runs against the same world; the
        # expected column order puts the calls that may change it (admin, researcher) last.
        with TestClient(app) as client:
            response = call(client, key, world, role)
        actual[role] = response.status_code
        assert response.status_code < 500, (role, response.text)
        if role == "member":
            assert SECRET not in response.text, "the member saw another annotator's label"
    assert actual == dict(zip(ROLES, EXPECTED[key], strict=True)), actual


def test_member_api_never_sees_other_labels(app, world):
    """Every JSON API GET the member may call, and their submit, carry no trace of the other label."""
    with TestClient(app) as client:
        for key in EXPECTED:
            if " /api/" not in key:
                continue
            response = call(client, key, world, "member")
            assert SECRET not in response.text, key
            if response.status_code == 200 and key.startswith("GET"):
                body = response.json()
                assert world.annotation_id not in _annotation_ids(body), key


def _annotation_ids(body) -> set:
    found = set()
    if isinstance(body, dict):
        if "task_id" in body and "ranking" in body and "id" in body:
            found.add(body["id"])
        for value in body.values():
            found |= _annotation_ids(value)
    elif isinstance(body, list):
        for value in body:
            found |= _annotation_ids(value)
    return found


if __name__ == "__main__":
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render_doc())
    print(f"wrote {DOC}")
