from app.models import ApiToken, Role
from tests.conftest import PASSWORD, csrf_from, login


class TestLogin:
    def test_anonymous_page_redirects_to_login(self, client):
        response = client.get("/", headers={"accept": "text/html"}, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")

    def test_anonymous_api_is_401(self, client):
        assert client.get("/api/projects").status_code == 401

    def test_wrong_password_is_refused(self, client, make_user):
        user = make_user(Role.annotator)
        token = csrf_from(client.get("/login").text)
        response = client.post("/login", data={"email": user.email, "password": "nope-nope", "csrf_token": token})
        assert response.status_code == 400
        assert "Wrong email or password" in response.text
        assert client.get("/api/me").status_code == 401

    def test_login_sets_httponly_cookie_and_session_works(self, client, make_user):
        user = make_user(Role.researcher)
        token = csrf_from(client.get("/login").text)
        response = client.post(
            "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}, follow_redirects=False
        )
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert client.get("/api/me").json()["email"] == user.email

    def test_login_without_csrf_token_is_refused(self, client, make_user):
        user = make_user()
        client.get("/login")
        response = client.post("/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 403

    def test_open_redirect_is_ignored(self, client, make_user):
        user = make_user()
        token = csrf_from(client.get("/login").text)
        response = client.post(
            "/login",
            data={"email": user.email, "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"

    def test_disabled_user_cannot_log_in(self, client, make_user, db):
        user = make_user()
        user.is_active = False
        db.merge(user)
        db.commit()
        token = csrf_from(client.get("/login").text)
        response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
        assert response.status_code == 400

    def test_logout_ends_the_session(self, client, make_user):
        login(client, make_user())
        assert client.post("/logout", follow_redirects=False).status_code == 303
        assert client.get("/api/me").status_code == 401


class TestCsrf:
    def test_cookie_post_without_header_is_403(self, client, make_user):
        login(client, make_user(Role.admin))
        del client.headers["X-CSRF-Token"]
        response = client.post("/api/projects", json={"name": "x", "kind": "ranking"})
        assert response.status_code == 403
        assert "CSRF" in response.json()["detail"]

    def test_cookie_post_with_header_works(self, client, make_user):
        login(client, make_user(Role.admin))
        assert client.post("/api/projects", json={"name": "x", "kind": "ranking"}).status_code == 201

    def test_bearer_token_needs_no_csrf(self, client, make_user, bearer):
        admin = make_user(Role.admin)
        response = client.post("/api/projects", json={"name": "x", "kind": "ranking"}, headers=bearer(admin))
        assert response.status_code == 201


class TestApiTokens:
    def test_token_is_stored_hashed_shown_once_and_revocable(self, client, make_user, db):
        user = make_user(Role.researcher)
        login(client, user)
        created = client.post("/api/me/tokens", json={"name": "script"})
        assert created.status_code == 201
        token = created.json()["token"]
        db.rollback()
        stored = db.get(ApiToken, created.json()["id"])
        assert stored.token_hash != token and len(stored.token_hash) == 64
        assert "token" not in client.get("/api/me/tokens").json()[0]
        headers = {"Authorization": f"Bearer {token}"}
        anonymous = client.__class__(client.app)
        assert anonymous.get("/api/me", headers=headers).json()["email"] == user.email
        assert client.delete(f"/api/me/tokens/{stored.id}").status_code == 204
        assert anonymous.get("/api/me", headers=headers).status_code == 401

    def test_invalid_token_is_401(self, client):
        assert client.get("/api/me", headers={"Authorization": "Bearer pfl_nope"}).status_code == 401

    def test_a_deactivated_users_token_is_401(self, client, make_user, bearer, db):
        user = make_user(Role.annotator)
        headers = bearer(user)
        assert client.get("/api/me", headers=headers).status_code == 200
        user.is_active = False
        db.merge(user)
        db.commit()
        assert client.get("/api/me", headers=headers).status_code == 401


class TestUserManagement:
    def test_admin_creates_user_via_api(self, client, make_user, bearer):
        admin = make_user(Role.admin)
        response = client.post(
            "/api/users",
            json={"email": "New@Example.org", "role": "annotator", "password": "longenough"},
            headers=bearer(admin),
        )
        assert response.status_code == 201
        assert response.json()["email"] == "new@example.org"

    def test_duplicate_email_is_409(self, client, make_user, bearer):
        admin = make_user(Role.admin)
        body = {"email": "a@example.org", "role": "annotator", "password": "longenough"}
        assert client.post("/api/users", json=body, headers=bearer(admin)).status_code == 201
        response = client.post("/api/users", json=body, headers=bearer(admin))
        assert response.status_code == 409
        assert "already exists" in response.json()["detail"]

    def test_bad_email_names_the_field(self, client, make_user, bearer):
        admin = make_user(Role.admin)
        response = client.post("/api/users", json={"email": "nope", "role": "annotator"}, headers=bearer(admin))
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "email"

    def test_users_page_form_creates_user(self, client, make_user, db):
        login(client, make_user(Role.admin))
        response = client.post(
            "/admin/users",
            data={
                "email": "form@example.org",
                "role": "researcher",
                "password": "longenough",
                "csrf_token": client.headers["X-CSRF-Token"],
            },
            headers={"accept": "text/html"},
        )
        assert response.status_code == 200
        assert "form@example.org" in response.text

    def test_non_admins_cannot_manage_users(self, client, make_user, bearer):
        for role in (Role.annotator, Role.researcher):
            headers = bearer(make_user(role))
            assert client.get("/api/users", headers=headers).status_code == 403
            assert client.post("/api/users", json={"email": "x@example.org", "role": "admin"}, headers=headers).status_code == 403
