"""The OpenAPI document and its two viewers, /docs and /redoc (app/web/api_docs.py, app/web/openapi.py): the schema
names both ways in and every content type of the export; the pages load only the app's own scripts, none inline.
tests/browser/test_api_docs.py sees them render in Chromium."""

import re

from app.users.dependencies import SESSION_COOKIE
from app.web.middleware import SECURITY_HEADERS

EXPORT = "/api/projects/{project_id}/export"


def test_the_schema_declares_the_bearer_token_and_the_session_cookie(client, make_user):
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == schemes["bearer"] | {"type": "http", "scheme": "bearer"}
    assert schemes["session"] == schemes["session"] | {"type": "apiKey", "in": "cookie", "name": "preflab_session"}
    assert schema["security"] == [{"bearer": []}, {"session": []}]  # either one; every /api operation needs a user

    make_user(email="someone@example.org", password="longenough")  # the cookie a login sets is the one documented
    login_page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
    client.post(
        "/login", data={"email": "someone@example.org", "password": "longenough", "csrf_token": token}, follow_redirects=False
    )
    assert SESSION_COOKIE == "preflab_session" and client.cookies.get(SESSION_COOKIE)
    assert client.get("/api/me").json()["email"] == "someone@example.org"


def test_the_schema_lists_every_content_type_of_the_export(client):
    ok = client.get("/openapi.json").json()["paths"][EXPORT]["get"]["responses"]["200"]
    assert set(ok["content"]) == {"application/x-ndjson", "application/gzip", "application/vnd.apache.parquet", "application/zip"}
    assert ok["content"]["application/vnd.apache.parquet"]["schema"] == {"type": "string", "format": "binary"}


def test_docs_pages_load_only_the_apps_own_scripts(client):
    for path in ("/docs", "/redoc"):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.text
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
        assert scripts and all('src="/static/' in attrs and body.strip() == "" for attrs, body in scripts), path
        assert "/static/js/api-docs.js" in html
        assert not re.search(r"(src|href)=\"(https?:)?//", html), path  # no CDN, no other origin
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert client.get(asset).status_code == 200, asset
        assert 'data-openapi-url="/openapi.json"' in html

    assert client.get("/docs").headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    # /redoc allows inline styles (ReDoc writes <style> elements) and nothing else more: scripts stay 'self'.
    redoc_csp = client.get("/redoc").headers["content-security-policy"]
    assert redoc_csp.replace(" 'unsafe-inline'", "", 1) == SECURITY_HEADERS["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in redoc_csp and "script-src 'self';" in redoc_csp
