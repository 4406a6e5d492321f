"""Sessions that end on the server: logout, deactivation, "sign out everywhere" and a password change
(revoke_sessions) end them; reactivation revives no cookie and no token. API tokens: expiry, last use."""

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import event, select, update

from app.models import ApiToken, Role, User, UserSession
from app.models.base import utcnow
from app.users import service
from tests.conftest import login


def copy_of(client: TestClient) -> TestClient:
    """Another browser holding a copy of the client's session cookie."""
    other = TestClient(client.app)
    other.cookies = client.cookies
    return other


class TestSessionsEnd:
    def test_a_copied_cookie_replayed_after_logout_is_401(self, client, make_user, db):
        login(client, make_user())
        copied = copy_of(client)
        assert copied.get("/api/me").status_code == 200
        assert client.post("/logout", follow_redirects=False).status_code == 303
        assert copied.get("/api/me").status_code == 401
        db.rollback()
        assert db.scalars(select(UserSession)).all() == []

    def test_deactivation_ends_sessions_and_tokens_and_reactivation_revives_neither(self, client, make_user, login_as, bearer):
        admin, user = make_user(Role.admin), make_user()
        browser, token = login_as(user), bearer(user)
        login(client, admin)
        assert client.post(f"/admin/users/{user.id}/active", data={"active": "false"}).status_code == 200
        assert browser.get("/api/me").status_code == 401
        assert client.get("/api/me", headers=token).status_code == 401
        assert client.post(f"/admin/users/{user.id}/active", data={"active": "true"}).status_code == 200
        assert copy_of(browser).get("/api/me").status_code == 401
        assert client.get("/api/me", headers=token).status_code == 401
        assert login_as(user).get("/api/me").status_code == 200  # logging in again works

    def test_sign_out_everywhere_from_the_api_and_the_users_page(self, client, make_user, login_as, bearer):
        admin, user = make_user(Role.admin), make_user()
        token = bearer(user)
        for sign_out in (
            lambda: client.post(f"/api/users/{user.id}/sign-out", headers=bearer(admin)),
            lambda: login(client, admin).post(f"/admin/users/{user.id}/sign-out", follow_redirects=False),
        ):
            laptop, phone = login_as(user), login_as(user)
            assert sign_out().status_code in (204, 303)
            assert laptop.get("/api/me").status_code == 401 and phone.get("/api/me").status_code == 401
            assert client.get("/api/me", headers=token).status_code == 200  # API tokens are not sessions

    def test_revoke_sessions_can_keep_the_current_one(self, make_user, login_as, database):
        """What the password change (campaign issue) calls: every other session of the user ends."""
        user = make_user()
        current, other = login_as(user), login_as(user)
        with database.sessionmaker() as session, session.begin():
            assert service.revoke_sessions(session=session, user=user, keep=_session_id(current)) == 1
        assert current.get("/api/me").status_code == 200
        assert other.get("/api/me").status_code == 401

    def test_an_expired_session_is_401(self, client, make_user, db):
        login(client, make_user())
        db.rollback()
        db.execute(update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
        assert client.get("/api/me").status_code == 401


def _session_id(client: TestClient) -> str:
    import json
    from base64 import b64decode

    signed = client.cookies["preflab_session"]
    return json.loads(b64decode(signed.split(".")[0]))["sid"]


class TestLastAdmin:
    def test_the_last_active_admin_cannot_be_deactivated(self, client, make_user, bearer, db):
        admin = make_user(Role.admin)
        refused = client.post(f"/api/users/{admin.id}/sign-out", headers=bearer(admin))
        assert refused.status_code == 204  # signing out is fine
        login(client, admin)
        response = client.post(
            f"/admin/users/{admin.id}/active", data={"active": "false"}, headers={"accept": "application/json"}
        )
        assert response.status_code == 409
        assert "last active admin" in response.json()["detail"]
        db.rollback()
        db.expire_all()  # make_user's objects live in this session
        assert db.get(User, admin.id).is_active

    def test_an_admin_can_be_deactivated_while_another_remains(self, client, make_user, db):
        first, second = make_user(Role.admin), make_user(Role.admin)
        login(client, first)
        assert client.post(f"/admin/users/{second.id}/active", data={"active": "false"}).status_code == 200
        response = client.post(
            f"/admin/users/{first.id}/active", data={"active": "false"}, headers={"accept": "application/json"}
        )
        assert response.status_code == 409
        db.rollback()
        db.expire_all()
        assert db.get(User, first.id).is_active and not db.get(User, second.id).is_active


class TestTokenExpiryAndUse:
    def test_expiring_token_and_the_list(self, client, make_user, db):
        login(client, make_user())
        created = client.post("/api/me/tokens", json={"name": "ci", "expires_in_days": 7})
        assert created.status_code == 201
        headers = {"Authorization": f"Bearer {created.json()['token']}"}
        anonymous = TestClient(client.app)
        assert anonymous.get("/api/me", headers=headers).status_code == 200
        (listed,) = client.get("/api/me/tokens").json()
        assert listed["expires_at"] is not None and listed["last_used_at"] is not None
        assert listed["expired"] is False and listed["revoked"] is False
        db.rollback()
        db.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(minutes=1)))
        db.commit()
        expired = anonymous.get("/api/me", headers=headers)
        assert expired.status_code == 401 and "expired" in expired.json()["detail"]
        assert client.get("/api/me/tokens").json()[0]["expired"] is True

    def test_bad_expiry_is_422_and_creates_nothing(self, client, make_user, db):
        login(client, make_user())
        for body, field in (
            ({"expires_in_days": 0}, "expires_in_days"),
            ({"expires_at": "2001-01-01T00:00:00Z"}, "in the future"),
            ({"expires_at": "2099-01-01T00:00:00"}, "time zone"),
            ({"expires_in_days": 3, "expires_at": "2099-01-01T00:00:00Z"}, "not both"),
        ):
            response = client.post("/api/me/tokens", json=body)
            assert response.status_code == 422 and field in response.text, response.text
        db.rollback()
        assert db.scalars(select(ApiToken)).all() == []

    def test_last_used_at_is_written_at_most_once_a_minute(self, client, make_user, bearer, db, database):
        headers = bearer(make_user())
        assert client.get("/api/me", headers=headers).status_code == 200
        db.rollback()
        first = db.scalar(select(ApiToken.last_used_at))
        assert first is not None
        writes: list[str] = []

        def count(conn, cursor, statement, *args) -> None:
            writes.extend([statement] if statement.startswith("UPDATE api_tokens") else [])

        event.listen(database.engine, "before_cursor_execute", count)
        try:
            assert client.get("/api/me", headers=headers).status_code == 200
        finally:
            event.remove(database.engine, "before_cursor_execute", count)
        assert writes == []  # within the minute: not even an UPDATE is sent
        db.rollback()
        assert db.scalar(select(ApiToken.last_used_at)) == first
        db.execute(update(ApiToken).values(last_used_at=utcnow() - timedelta(minutes=2)))
        db.commit()
        assert client.get("/api/me", headers=headers).status_code == 200
        db.rollback()
        assert db.scalar(select(ApiToken.last_used_at)) > first
