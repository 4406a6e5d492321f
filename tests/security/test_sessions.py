"""Sessions and accounts: CSRF on every cookie-authenticated state change, the session cookie's flags,
login throttling (in the database, shared by app processes), and passwords kept out of the logs."""

import logging
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.config import get_settings
from app.db import Database
from app.main import create_app
from app.models import Base, LoginAttempt, Role
from app.users import throttle
from tests.conftest import PASSWORD, csrf_from, login
from tests.security.test_permissions import EXPECTED, ROLES, app_routes, call, world  # noqa: F401  (world is a fixture)


def snapshot(db) -> dict[str, list]:
    """Every row of every table, to prove a refused request changed nothing."""
    db.rollback()
    return {t.name: sorted(map(tuple, db.execute(select(t)).all()), key=repr) for t in Base.metadata.sorted_tables}


# --- CSRF ------------------------------------------------------------------------------------------

STATE_CHANGING = [key for key in EXPECTED if not key.startswith("GET ")]


def _allowed_role(key: str) -> str:
    """A logged-in role the route lets in (so a 403 can only come from the missing token): one it answers with
    success, or with a 400/422 about the input (a reset code's use, open to anyone, is called with a wrong code)."""
    statuses = dict(zip(ROLES, EXPECTED[key], strict=True))
    return next(role for role in ("admin", "member", "researcher") if statuses[role] not in (401, 403, 404))


def test_every_state_changing_route_is_covered(app):
    assert sorted(k for k in app_routes(app) if not k.startswith("GET ")) == sorted(STATE_CHANGING)


@pytest.mark.parametrize("key", STATE_CHANGING)
def test_session_without_csrf_token_is_403_and_changes_nothing(app, world, db, key):  # noqa: F811
    role = _allowed_role(key)
    world.headers["cookie"] = {}  # call() sends no Authorization header: the session cookie authenticates
    with TestClient(app) as client:
        login(client, world.users[role])
        token = client.headers.pop("X-CSRF-Token")
        before = snapshot(db)
        refused = call(client, key, world, "cookie")
        assert refused.status_code == 403, refused.text
        assert "CSRF" in refused.text
        assert snapshot(db) == before, "a request refused for CSRF changed the database"
        assert client.get("/api/me").status_code == 200, "the refused request ended the session"

        client.headers["X-CSRF-Token"] = token  # the same call with the token goes through
        accepted = call(client, key, world, "cookie")
        assert accepted.status_code == dict(zip(ROLES, EXPECTED[key], strict=True))[role], accepted.text


def test_wrong_csrf_token_is_refused(client, make_user):
    login(client, make_user(Role.admin))
    client.headers["X-CSRF-Token"] = "not-the-token"
    assert client.post("/api/projects", json={"name": "x", "kind": "ranking"}).status_code == 403
    response = client.post("/projects/new", data={"name": "x", "kind": "ranking", "csrf_token": "nope"})
    assert response.status_code == 403


# --- the session cookie ----------------------------------------------------------------------------


def _login_cookie(client: TestClient, user, **kwargs) -> str:
    token = csrf_from(client.get("/login", **kwargs).text)
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}, follow_redirects=False, **kwargs
    )
    assert response.status_code == 303, response.text
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith("preflab_session=")]
    assert len(cookies) == 1
    return cookies[0].lower()


def test_cookie_flags_over_http(app, make_user):
    with TestClient(app) as client:
        cookie = _login_cookie(client, make_user())
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http (development): a Secure cookie would never come back


def test_cookie_is_secure_over_https(app, make_user):
    with TestClient(app, base_url="https://testserver") as client:
        cookie = _login_cookie(client, make_user())
        assert client.get("/api/me").status_code == 200
    assert "; secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_cookie_is_secure_behind_a_tls_proxy(app):
    """uvicorn --proxy-headers (as `preflab serve` runs it) takes the scheme from X-Forwarded-Proto."""

    def session_cookie(headers: dict) -> str:
        with TestClient(ProxyHeadersMiddleware(app, trusted_hosts="*")) as client:
            page = client.get("/login", headers=headers)  # the first page sets the session (its CSRF token)
        return next(c for c in page.headers.get_list("set-cookie") if c.startswith("preflab_session=")).lower()

    assert "; secure" in session_cookie({"X-Forwarded-Proto": "https"})
    assert "secure" not in session_cookie({})


def test_session_https_only_setting_always_marks_it_secure(database, make_user):
    app = create_app(get_settings().model_copy(update={"SESSION_HTTPS_ONLY": True}))
    app.state.database.dispose()
    app.state.database = database
    with TestClient(app, base_url="https://testserver") as client:
        cookie = _login_cookie(client, make_user())
    assert cookie.count("secure") == 1


# --- login throttling ------------------------------------------------------------------------------


def _try(client: TestClient, email: str, password: str):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token}, follow_redirects=False)


def age_failures(db, by: timedelta) -> None:
    db.rollback()
    attempts = db.scalars(select(LoginAttempt)).all()
    assert attempts
    for attempt in attempts:
        attempt.attempted_at -= by
    db.commit()


class TestThrottling:
    def test_fifth_failure_blocks_the_account_even_with_the_right_password(self, client, make_user):
        user = make_user()
        for _ in range(throttle.MAX_PAIR_FAILURES):
            assert _try(client, user.email, "wrong password").status_code == 400
        blocked = _try(client, user.email, PASSWORD)
        assert blocked.status_code == 429
        assert 0 < int(blocked.headers["Retry-After"]) <= 15 * 60
        assert "Too many failed logins for this account" in blocked.text
        assert "try again in 15 minutes" in blocked.text
        assert client.get("/api/me").status_code == 401

    def test_other_accounts_are_not_blocked(self, client, make_user):
        victim, other = make_user(), make_user()
        for _ in range(throttle.MAX_PAIR_FAILURES):
            _try(client, victim.email, "wrong password")
        assert _try(client, other.email, PASSWORD).status_code == 303

    def test_block_ends_when_the_failures_leave_the_window(self, client, db, make_user):
        user = make_user()
        for _ in range(throttle.MAX_PAIR_FAILURES):
            _try(client, user.email, "wrong password")
        assert _try(client, user.email, PASSWORD).status_code == 429
        age_failures(db, timedelta(minutes=16))
        assert _try(client, user.email, PASSWORD).status_code == 303

    def test_retry_after_counts_from_the_oldest_failure(self, client, db, make_user):
        user = make_user()
        for _ in range(throttle.MAX_PAIR_FAILURES):
            _try(client, user.email, "wrong password")
        age_failures(db, timedelta(minutes=10))
        retry = int(_try(client, user.email, PASSWORD).headers["Retry-After"])
        assert 4 * 60 < retry <= 5 * 60

    def test_success_resets_the_account_count(self, client, make_user):
        user = make_user()
        for _ in range(throttle.MAX_PAIR_FAILURES - 1):
            _try(client, user.email, "wrong password")
        assert _try(client, user.email, PASSWORD).status_code == 303
        client.post("/logout", headers={"X-CSRF-Token": csrf_from(client.get("/login").text)})
        client.cookies.clear()
        for _ in range(throttle.MAX_PAIR_FAILURES - 1):
            assert _try(client, user.email, "wrong password").status_code == 400
        assert _try(client, user.email, PASSWORD).status_code == 303

    def test_one_address_guessing_many_accounts_is_blocked(self, client, make_user):
        user = make_user()
        for i in range(throttle.MAX_ADDRESS_FAILURES):  # never 5 on one account
            assert _try(client, f"guess{i % 4}@example.org", "wrong password").status_code == 400
        blocked = _try(client, user.email, PASSWORD)
        assert blocked.status_code == 429
        assert "from your address" in blocked.text
        # another client address is not affected
        proxied = ProxyHeadersMiddleware(client.app, trusted_hosts="*")
        with TestClient(proxied, headers={"X-Forwarded-For": "203.0.113.9"}) as elsewhere:
            assert _try(elsewhere, user.email, PASSWORD).status_code == 303

    def test_unknown_accounts_are_throttled_too(self, client):
        for _ in range(throttle.MAX_PAIR_FAILURES):
            assert _try(client, "nobody@example.org", "x").status_code == 400
        assert _try(client, "nobody@example.org", "x").status_code == 429

    def test_failures_are_shared_between_app_processes(self, database, make_user):
        """Two app instances with their own engines (as two uvicorn workers): the count is in the database."""
        user = make_user()
        second = create_app(get_settings())
        try:
            first = create_app(get_settings())
            first.state.database.dispose()
            first.state.database = database
            with TestClient(first) as a, TestClient(second) as b:
                for i in range(throttle.MAX_PAIR_FAILURES):
                    assert _try(a if i % 2 else b, user.email, "wrong password").status_code == 400
                assert _try(b, user.email, PASSWORD).status_code == 429
                assert _try(a, user.email, PASSWORD).status_code == 429
        finally:
            second.state.database.dispose()
        assert isinstance(second.state.database, Database)


# --- passwords never logged ------------------------------------------------------------------------


def test_passwords_never_reach_the_logs(client, make_user, bearer, caplog):
    caplog.set_level(logging.DEBUG)  # everything, from every logger (SQLAlchemy's statements too)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        admin = make_user(Role.admin)
        wrong, created, short = "Wr0ng-Secret-9a1b", "Cre4ted-Secret-77c2", "Sh0rt"
        token = csrf_from(client.get("/login").text)
        for password, status in ((wrong, 400), (PASSWORD, 303)):
            response = client.post(
                "/login", data={"email": admin.email, "password": password, "csrf_token": token}, follow_redirects=False
            )
            assert response.status_code == status
        body = {"email": "n1@example.org", "role": "annotator", "password": created}
        token = csrf_from(client.get("/").text)  # rotated at login
        assert client.post("/api/users", json=body, headers=bearer(admin)).status_code == 201
        too_short = client.post("/api/users", json=body | {"email": "n2@example.org", "password": short}, headers=bearer(admin))
        assert too_short.status_code == 422
        assert short not in too_short.text  # the error names the field, never echoes the value
        form = client.post(
            "/admin/users",
            headers={"accept": "text/html"},
            follow_redirects=False,
            data={"email": "n3@example.org", "role": "annotator", "password": created, "csrf_token": token},
        )
        assert form.status_code == 303
        assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records), "SQL was not captured"
        logged = caplog.text + "".join(str(r.args) for r in caplog.records)
        for secret in (wrong, PASSWORD, created, short):
            assert secret not in logged
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
