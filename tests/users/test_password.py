"""Passwords: your own change (current password required; other sessions end, this one stays), an admin's
one-time reset code (shown once, stored hashed, expiring, single use; signs the user out everywhere), the one
password rule, the login throttle on wrong current passwords and codes, and every route's permissions."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.models import ApiToken, PasswordReset, Role, UserSession
from app.models.base import utcnow
from app.users import throttle
from app.users.security import hash_api_token
from tests.conftest import PASSWORD, csrf_from, login

NEW = "a brand new passphrase"


def _sessions(db, user) -> int:
    db.rollback()
    return len(db.scalars(select(UserSession).where(UserSession.user_id == user.id)).all())


def _can_log_in(app, user, password) -> bool:
    with TestClient(app) as c:
        token = csrf_from(c.get("/login").text)
        r = c.post("/login", data={"email": user.email, "password": password, "csrf_token": token}, follow_redirects=False)
        return r.status_code == 303


class TestChangeOwnPassword:
    def test_form_changes_it_keeps_this_session_and_ends_the_others(self, app, db, make_user, login_as):
        user = make_user(Role.annotator)
        other = login_as(user)  # another browser
        me = login_as(user)
        assert _sessions(db, user) == 2
        r = me.post(
            "/account/password",
            data={"current_password": PASSWORD, "new_password": NEW, "new_password_again": NEW},
            follow_redirects=False,
        )
        assert r.status_code == 303 and "changed=1" in r.headers["location"]
        assert me.get("/api/me").status_code == 200  # this session stays
        assert other.get("/api/me").status_code == 401  # the other ended
        assert _sessions(db, user) == 1
        assert "1 other session signed out" in me.get(r.headers["location"]).text
        assert _can_log_in(app, user, NEW) and not _can_log_in(app, user, PASSWORD)

    def test_wrong_current_password_is_shown_next_to_its_field(self, app, make_user, login_as):
        user = make_user()
        me = login_as(user)
        r = me.post("/account/password", data={"current_password": "nope", "new_password": NEW, "new_password_again": NEW})
        assert r.status_code == 400
        assert 'id="current_password-error"' in r.text and "not your current password" in r.text
        assert _can_log_in(app, user, PASSWORD)

    @pytest.mark.parametrize(
        ("new", "again", "field", "words"),
        [("short", "short", "new_password", "at least 8 characters"), (NEW, NEW + "x", "new_password_again", "does not match")],
    )
    def test_the_creation_rule_and_the_repeat_are_checked(self, make_user, login_as, new, again, field, words):
        me = login_as(make_user())
        r = me.post("/account/password", data={"current_password": PASSWORD, "new_password": new, "new_password_again": again})
        assert r.status_code == 400 and f'id="{field}-error"' in r.text and words in r.text

    def test_api(self, app, db, make_user, bearer, login_as):
        user = make_user(Role.researcher)
        browser = login_as(user)
        with TestClient(app) as c:
            r = c.post("/api/me/password", json={"current_password": PASSWORD, "new_password": NEW}, headers=bearer(user))
            assert r.status_code == 204
            assert browser.get("/api/me").status_code == 401  # called with a token: every browser session ends
            bad = c.post("/api/me/password", json={"current_password": "wrong", "new_password": NEW}, headers=bearer(user))
            assert bad.status_code == 422 and "current password" in bad.json()["detail"]
            short = c.post("/api/me/password", json={"current_password": NEW, "new_password": "x"}, headers=bearer(user))
            assert short.status_code == 422 and "new_password" in short.text
        assert _can_log_in(app, user, NEW)

    def test_api_from_the_browser_keeps_its_session(self, make_user, login_as):
        user = make_user()
        other, me = login_as(user), login_as(user)
        assert me.post("/api/me/password", json={"current_password": PASSWORD, "new_password": NEW}).status_code == 204
        assert me.get("/api/me").status_code == 200 and other.get("/api/me").status_code == 401

    def test_wrong_current_passwords_are_throttled_as_logins(self, make_user, bearer, client):
        user = make_user()
        headers = bearer(user)
        for _ in range(throttle.MAX_PAIR_FAILURES):
            r = client.post("/api/me/password", json={"current_password": "guess", "new_password": NEW}, headers=headers)
            assert r.status_code == 422
        r = client.post("/api/me/password", json={"current_password": PASSWORD, "new_password": NEW}, headers=headers)
        assert r.status_code == 429 and "Retry-After" in r.headers

    def test_account_page_and_user_menu(self, make_user, login_as):
        me = login_as(make_user(Role.annotator))
        page = me.get("/account")
        assert page.status_code == 200 and 'action="/account/password"' in page.text
        assert 'href="/account"' in me.get("/").text  # the name in the top bar links to it


class TestAdminReset:
    def _reset(self, admin_client, user) -> str:
        r = admin_client.post(f"/api/users/{user.id}/password-reset")
        assert r.status_code == 201, r.text
        return r.json()["code"]

    def test_code_is_shown_once_stored_hashed_and_signs_the_user_out_everywhere(self, app, db, make_user, login_as, bearer):
        admin, user = make_user(Role.admin), make_user(Role.annotator)
        browser = login_as(user)
        token_headers = bearer(user)
        with TestClient(app, headers=bearer(admin)) as admin_api:
            body = admin_api.post(f"/api/users/{user.id}/password-reset").json()
        code = body["code"]
        assert body["url"] == f"/reset-password?code={code}"  # PUBLIC_BASE_URL + path; never the request's Host
        db.rollback()
        stored = db.scalars(select(PasswordReset).where(PasswordReset.user_id == user.id)).one()
        assert stored.code_hash == hash_api_token(code) and code not in stored.code_hash
        assert browser.get("/api/me").status_code == 401  # signed out everywhere
        with TestClient(app) as c:
            assert c.get("/api/me", headers=token_headers).status_code == 401  # API tokens revoked, as on deactivation
        assert db.scalars(select(ApiToken.revoked_at).where(ApiToken.user_id == user.id)).one() is not None
        assert not _can_log_in(app, user, PASSWORD)  # the old password no longer works

    def test_using_the_code_sets_the_password_once(self, app, make_user, bearer):
        admin, user = make_user(Role.admin), make_user(Role.annotator)
        with TestClient(app, headers=bearer(admin)) as admin_api:
            code = self._reset(admin_api, user)
        with TestClient(app) as c:
            assert c.post("/api/password-reset", json={"code": code, "new_password": NEW}).status_code == 204
            again = c.post("/api/password-reset", json={"code": code, "new_password": "another one entirely"})
            assert again.status_code == 422 and "already used" in again.json()["detail"]
        assert _can_log_in(app, user, NEW)

    def test_a_newer_code_spends_the_older_and_an_expired_code_fails(self, app, db, make_user, bearer):
        admin, user = make_user(Role.admin), make_user(Role.annotator)
        with TestClient(app, headers=bearer(admin)) as admin_api:
            old, new = self._reset(admin_api, user), self._reset(admin_api, user)
        with TestClient(app) as c:
            assert c.post("/api/password-reset", json={"code": old, "new_password": NEW}).status_code == 422
            db.rollback()
            db.execute(
                update(PasswordReset).where(PasswordReset.used_at.is_(None)).values(expires_at=utcnow() - timedelta(seconds=1))
            )
            db.commit()
            assert c.post("/api/password-reset", json={"code": new, "new_password": NEW}).status_code == 422
        assert not _can_log_in(app, user, NEW)

    def test_short_new_password_is_refused_and_the_code_kept(self, app, make_user, bearer):
        admin, user = make_user(Role.admin), make_user()
        with TestClient(app, headers=bearer(admin)) as admin_api:
            code = self._reset(admin_api, user)
        with TestClient(app) as c:
            r = c.post("/api/password-reset", json={"code": code, "new_password": "short"})
            assert r.status_code == 422 and "new_password" in r.text
            assert c.post("/api/password-reset", json={"code": code, "new_password": NEW}).status_code == 204

    def test_wrong_codes_are_throttled_as_logins(self, app, make_user, bearer):
        admin, user = make_user(Role.admin), make_user()
        with TestClient(app, headers=bearer(admin)) as admin_api:
            code = self._reset(admin_api, user)
        with TestClient(app) as c:
            for _ in range(throttle.MAX_PAIR_FAILURES):
                assert c.post("/api/password-reset", json={"code": "guess", "new_password": NEW}).status_code == 422
            blocked = c.post("/api/password-reset", json={"code": code, "new_password": NEW})
            assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
            page = c.post("/reset-password", data={"code": code, "new_password": NEW, "new_password_again": NEW})
            assert page.status_code == 400 and "Too many failed" in page.text  # the form shows it beside the code

    def test_admin_page_shows_the_code_once_and_the_form_sets_the_password(self, app, make_user, login_as):
        admin, user = make_user(Role.admin), make_user(Role.annotator)
        admin_browser = login_as(admin)
        list_page = admin_browser.get("/admin/users").text
        assert f'action="/admin/users/{user.id}/password-reset"' in list_page
        shown = admin_browser.post(f"/admin/users/{user.id}/password-reset")
        assert shown.status_code == 200
        code = shown.text.split('id="reset-code-value">')[1].split("<")[0]
        assert code and code not in admin_browser.get("/admin/users").text  # shown once
        with TestClient(app) as c:
            assert f'value="{code}"' in c.get(f"/reset-password?code={code}").text
            wrong = c.post("/reset-password", data={"code": "typo", "new_password": NEW, "new_password_again": NEW})
            assert wrong.status_code == 400 and 'id="code-error"' in wrong.text
            done = c.post(
                "/reset-password", data={"code": code, "new_password": NEW, "new_password_again": NEW}, follow_redirects=False
            )
            assert done.status_code == 303 and "/login?reset=1" in done.headers["location"]
            assert "Your new password is set" in c.get(done.headers["location"]).text
        assert _can_log_in(app, user, NEW)

    def test_an_admin_cannot_reset_their_own(self, make_user, bearer, client):
        admin = make_user(Role.admin)
        assert client.post(f"/api/users/{admin.id}/password-reset", headers=bearer(admin)).status_code == 409


class TestPermissions:
    @pytest.mark.parametrize("role", [Role.annotator, Role.researcher])
    def test_only_admins_reset(self, client, make_user, bearer, role):
        target = make_user()
        assert client.post(f"/api/users/{target.id}/password-reset", headers=bearer(make_user(role))).status_code == 403

    @pytest.mark.parametrize("role", [Role.annotator, Role.researcher])
    def test_only_admins_reset_by_form(self, make_user, login_as, role):
        target = make_user()
        assert login_as(make_user(role)).post(f"/admin/users/{target.id}/password-reset").status_code == 403

    def test_anonymous(self, client, make_user):
        target = make_user()
        assert client.post(f"/api/users/{target.id}/password-reset").status_code == 401
        assert client.post("/api/me/password", json={"current_password": PASSWORD, "new_password": NEW}).status_code == 401
        assert client.get("/account", follow_redirects=False).status_code in (303, 401)
        # The reset page is for people who cannot log in: open to anyone, behind the throttle.
        assert client.get("/reset-password").status_code == 200

    def test_unknown_user_is_404(self, client, make_user, bearer):
        assert client.post("/api/users/999999/password-reset", headers=bearer(make_user(Role.admin))).status_code == 404

    def test_form_posts_need_the_csrf_token(self, app, make_user):
        user = make_user()
        with TestClient(app) as c:
            login(c, user)
            del c.headers["X-CSRF-Token"]
            r = c.post("/account/password", data={"current_password": PASSWORD, "new_password": NEW, "new_password_again": NEW})
            assert r.status_code == 403


class TestAddMemberTypo:
    def test_the_form_comes_back_with_the_error_beside_the_field(self, db, make_user, make_project, login_as):
        admin = make_user(Role.admin)
        project = make_project()
        page = login_as(admin).post(f"/projects/{project.id}/members", data={"email": "anotator@example.org"})
        assert page.status_code == 400
        assert 'id="member-error"' in page.text and "anotator@example.org" in page.text
        assert 'value="anotator@example.org"' in page.text  # what was typed, to correct
        assert 'id="export-form"' in page.text  # the whole project page, not an error page

    def test_a_known_email_is_added(self, make_user, make_project, login_as, db):
        admin, ann = make_user(Role.admin), make_user(Role.annotator)
        project = make_project()
        r = login_as(admin).post(f"/projects/{project.id}/members", data={"email": ann.email.upper()}, follow_redirects=False)
        assert r.status_code == 303
        db.rollback()
        from app.models import ProjectMember

        assert db.get(ProjectMember, (project.id, ann.id)) is not None
