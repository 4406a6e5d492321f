"""Safe to deploy on its defaults: no known signing secret, compose bound to loopback and trusting only its
proxy, redirects and links that ignore the Host header, the CSRF token rotated at login, and a browser's
speculative prefetch of the annotate page leasing nothing."""

import json
import threading
import uuid
from base64 import b64encode
from pathlib import Path

import itsdangerous
import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import delete, select

from app import demo
from app.config import Settings, get_settings
from app.main import create_app
from app.models import AppSecret, Assignment, Role
from app.secrets import SESSION_SECRET, shared_secret
from tests.annotation.test_queue import add_prompts  # noqa: F401  (a fixture)
from tests.conftest import PASSWORD, csrf_from, login

ROOT = Path(__file__).resolve().parents[2]


def _app_without_secret_key(database):
    """An app as a default install starts it: no SECRET_KEY in the environment."""
    app = create_app(get_settings().model_copy(update={"SECRET_KEY": None}))
    app.state.database.dispose()
    app.state.database = database
    return app


# --- 1. no known signing secret ---------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["local", "test", "production"])
def test_the_old_default_secret_is_refused_in_every_environment(environment):
    with pytest.raises(ValidationError, match="SECRET_KEY='changethis' is a published default"):
        Settings(SECRET_KEY="changethis", ENVIRONMENT=environment)
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(SECRET_KEY="short-but-not-changethis", ENVIRONMENT=environment)
    assert Settings(_env_file=None, SECRET_KEY=None, ENVIRONMENT=environment).SECRET_KEY is None


def test_a_cookie_forged_with_the_old_default_is_no_session(database, make_user):
    admin = make_user(Role.admin)
    forged = itsdangerous.TimestampSigner("changethis").sign(b64encode(json.dumps({"user_id": admin.id}).encode()))
    with TestClient(_app_without_secret_key(database)) as client:
        client.cookies.set("preflab_session", forged.decode())
        assert client.get("/api/me").status_code == 401


def test_without_secret_key_one_is_generated_stored_and_shared_by_every_process(database, db, make_user):
    user = make_user()
    with TestClient(_app_without_secret_key(database)) as first, TestClient(_app_without_secret_key(database)) as second:
        login(first, user)
        second.cookies = first.cookies  # a replica behind the proxy, or the app after a restart
        assert second.get("/api/me").json()["email"] == user.email
    db.rollback()
    stored = db.get(AppSecret, SESSION_SECRET)
    assert stored is not None and len(stored.value) >= 32
    with database.sessionmaker() as session, session.begin():
        demo.wipe(session)  # `preflab demo --reset` and the tests empty every table but this one
    db.rollback()
    assert db.get(AppSecret, SESSION_SECRET).value == stored.value


def test_concurrent_first_starts_agree_on_one_secret(database, db):
    name = f"test-{uuid.uuid4().hex}"
    values: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        values.append(shared_secret(database.engine, name))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(values) == 8 and len(set(values)) == 1
    finally:
        db.rollback()
        db.execute(delete(AppSecret).where(AppSecret.name == name))
        db.commit()


# --- compose and the proxy (no Docker engine runs here: the files are checked) -------------------------


def test_compose_binds_loopback_and_trusts_only_its_proxy():
    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    assert "changethis" not in text
    proxy = compose["services"]["proxy"]
    (published,) = proxy["ports"]
    assert published.startswith("${PREFLAB_BIND:-127.0.0.1}:")
    env = compose["services"]["app"]["environment"]
    assert env["FORWARDED_ALLOW_IPS"] not in ("*", "", None)
    assert env["FORWARDED_ALLOW_IPS"] == proxy["networks"]["backend"]["ipv4_address"]
    assert env["SECRET_KEY"] == "${SECRET_KEY:-}"  # unset by default: generated and kept in the database
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx  # the client's own header is dropped


# --- 10. Host header, CSRF rotation, prefetch ----------------------------------------------------------

EVIL = {"host": "evil.example", "accept": "text/html"}


def test_redirects_and_links_never_use_the_host_header(client, make_user):
    login(client, make_user(Role.admin))
    page = client.get("/admin/users", headers=EVIL)
    assert page.status_code == 200 and "evil.example" not in page.text
    created = client.post(
        "/admin/users",
        headers=EVIL,
        data={
            "email": "n@example.org",
            "role": "annotator",
            "password": "long enough",
            "csrf_token": client.headers["X-CSRF-Token"],
        },
        follow_redirects=False,
    )
    assert created.status_code == 303 and created.headers["location"] == "/admin/users"
    slash = client.get("/admin/users/", headers=EVIL, follow_redirects=False)  # Starlette's own slash redirect
    assert slash.status_code in (307, 404)
    assert "evil.example" not in slash.headers.get("location", "")


def test_redirects_use_the_configured_base_url(database, make_user):
    app = create_app(get_settings().model_copy(update={"PUBLIC_BASE_URL": "https://labels.example.org"}))
    app.state.database.dispose()
    app.state.database = database
    with TestClient(app) as client:
        login(client, make_user(Role.admin))
        response = client.post(
            f"/admin/users/{make_user().id}/sign-out",
            headers=EVIL,
            data={"csrf_token": client.headers["X-CSRF-Token"]},
            follow_redirects=False,
        )
    assert response.headers["location"] == "https://labels.example.org/admin/users"
    with pytest.raises(ValidationError, match="scheme and host only"):
        Settings(PUBLIC_BASE_URL="https://labels.example.org/app?x=1")


def test_the_pre_login_csrf_token_is_rotated_at_login(client, make_user):
    user = make_user(Role.admin)
    before = csrf_from(client.get("/login").text)
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": before}, follow_redirects=False
    )
    assert response.status_code == 303
    after = csrf_from(client.get("/").text)
    assert after != before
    body = {"name": "x", "kind": "ranking"}
    assert client.post("/api/projects", json=body, headers={"X-CSRF-Token": before}).status_code == 403
    assert client.post("/api/projects", json=body, headers={"X-CSRF-Token": after}).status_code == 201


@pytest.mark.parametrize("header", [{"Sec-Purpose": "prefetch"}, {"Sec-Purpose": "prefetch;prerender"}, {"Purpose": "prefetch"}])
def test_a_speculative_prefetch_of_the_annotate_page_leases_nothing(client, db, make_user, make_project, add_prompts, header):  # noqa: F811
    annotator = make_user()
    project = make_project(members=[annotator])
    add_prompts(project, 2)
    db.commit()
    login(client, annotator)
    prefetched = client.get(f"/projects/{project.id}/annotate", headers=header | {"accept": "text/html"})
    assert prefetched.status_code == 425 and prefetched.headers["cache-control"] == "no-store"
    db.rollback()
    assert db.scalars(select(Assignment).where(Assignment.project_id == project.id)).all() == []
    assert client.get(f"/projects/{project.id}/annotate").status_code == 200  # the real visit leases one
    db.rollback()
    assert len(db.scalars(select(Assignment).where(Assignment.project_id == project.id)).all()) == 1
