import pytest

from app.models import Role
from tests.conftest import login


class TestCreateProject:
    def test_admin_creates_ranking_project(self, client, make_user, bearer):
        response = client.post(
            "/api/projects",
            json={
                "name": "helpfulness v1",
                "kind": "ranking",
                "overlap": 4,
                "allow_ties": True,
                "rating_criteria": [{"name": "helpfulness", "min": 1, "max": 7}],
                "guidelines": "# Rank",
            },
            headers=bearer(make_user(Role.admin)),
        )
        assert response.status_code == 201
        body = response.json()
        assert (body["kind"], body["overlap"], body["allow_ties"]) == ("ranking", 4, True)
        assert body["rating_criteria"][0]["name"] == "helpfulness"

    def test_defaults(self, client, make_user, bearer):
        body = client.post("/api/projects", json={"name": "p"}, headers=bearer(make_user(Role.admin))).json()
        assert (body["kind"], body["overlap"], body["allow_ties"], body["strength_scale"]) == ("ranking", 3, False, None)

    def test_pairwise_with_strength_scale(self, client, make_user, bearer):
        scale = ["significantly better", "better", "slightly better", "negligibly better / unsure"]
        body = client.post(
            "/api/projects",
            json={"name": "p", "kind": "pairwise", "strength_scale": scale},
            headers=bearer(make_user(Role.admin)),
        ).json()
        assert body["strength_scale"] == scale

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"name": "p", "kind": "ranking", "strength_scale": ["a", "b"]}, "only for pairwise"),
            ({"name": "p", "kind": "sorting"}, "kind"),
            ({"name": "p", "overlap": 0}, "overlap"),
            ({"name": "   "}, "blank"),
            ({"name": "p", "rating_criteria": [{"name": "x", "min": 5, "max": 1}]}, "greater than min"),
        ],
    )
    def test_bad_input_names_the_problem(self, client, make_user, bearer, body, message):
        response = client.post("/api/projects", json=body, headers=bearer(make_user(Role.admin)))
        assert response.status_code == 422
        assert message in response.text

    def test_duplicate_name_is_409(self, client, make_user, bearer):
        headers = bearer(make_user(Role.admin))
        assert client.post("/api/projects", json={"name": "same"}, headers=headers).status_code == 201
        assert client.post("/api/projects", json={"name": "same"}, headers=headers).status_code == 409

    @pytest.mark.parametrize("role", [Role.researcher, Role.annotator])
    def test_only_admins_create_projects(self, client, make_user, bearer, role):
        response = client.post("/api/projects", json={"name": "p"}, headers=bearer(make_user(role)))
        assert response.status_code == 403

    def test_form_creates_project_and_shows_errors(self, client, make_user):
        login(client, make_user(Role.admin))
        token = client.headers["X-CSRF-Token"]
        bad = client.post(
            "/projects/new",
            data={"name": "p", "kind": "ranking", "overlap": "3", "rating_criteria": "helpfulness seven", "csrf_token": token},
        )
        assert bad.status_code == 400 and "rating criteria, line 1" in bad.text
        good = client.post(
            "/projects/new",
            data={
                "name": "Form project",
                "kind": "pairwise",
                "overlap": "2",
                "strength_scale": "better\nslightly better",
                "csrf_token": token,
            },
        )
        assert good.status_code == 200 and "Form project" in good.text and "better / slightly better" in good.text


class TestVisibility:
    def test_annotators_see_only_their_projects(self, client, make_user, make_project, bearer):
        annotator = make_user(Role.annotator)
        mine = make_project(members=[annotator])
        other = make_project()
        headers = bearer(annotator)
        assert [p["id"] for p in client.get("/api/projects", headers=headers).json()] == [mine.id]
        assert client.get(f"/api/projects/{other.id}", headers=headers).status_code == 404
        assert client.get(f"/api/projects/{mine.id}", headers=headers).status_code == 200

    def test_staff_see_all_projects(self, client, make_user, make_project, bearer):
        make_project(), make_project()
        for role in (Role.admin, Role.researcher):
            assert len(client.get("/api/projects", headers=bearer(make_user(role))).json()) == 2

    def test_project_page_shows_counts_to_staff_only(self, client, make_user, make_project, login_as):
        annotator = make_user(Role.annotator)
        project = make_project(members=[annotator])
        staff_page = login_as(make_user(Role.researcher)).get(f"/projects/{project.id}")
        assert 'id="stat-prompts"' in staff_page.text and "Upload prompts" in staff_page.text
        annotator_page = login_as(annotator).get(f"/projects/{project.id}")
        assert annotator_page.status_code == 200
        assert 'id="stat-prompts"' not in annotator_page.text and "Upload prompts" not in annotator_page.text
        assert "Start annotating" in annotator_page.text

    def test_guidelines_markdown_is_rendered_safely(self, client, make_user, make_project, login_as):
        project = make_project(guidelines="**Be kind** <script>alert(1)</script>")
        page = login_as(make_user(Role.admin)).get(f"/projects/{project.id}").text
        assert "<strong>Be kind</strong>" in page
        assert "<script>alert(1)" not in page and "&lt;script&gt;" in page

    def test_admin_manages_members(self, client, make_user, make_project, bearer):
        admin, annotator = make_user(Role.admin), make_user(Role.annotator)
        project = make_project()
        headers = bearer(admin)
        assert client.put(f"/api/projects/{project.id}/members/{annotator.id}", headers=headers).status_code == 204
        assert client.get(f"/api/projects/{project.id}", headers=bearer(annotator)).status_code == 200
        assert client.delete(f"/api/projects/{project.id}/members/{annotator.id}", headers=headers).status_code == 204
        assert client.get(f"/api/projects/{project.id}", headers=bearer(annotator)).status_code == 404
        researcher = bearer(make_user(Role.researcher))
        assert client.put(f"/api/projects/{project.id}/members/{annotator.id}", headers=researcher).status_code == 403
