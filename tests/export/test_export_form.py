"""The project page's export form: errors beside their field, in words, on the project page (not JSON on a new
page); options that do not apply are not offered; the preview counts what each filter removes, with the
export's own row building (checked against the downloads themselves and against counts by hand)."""

import json

import pytest
from sqlalchemy import select, update

from app.models import Prompt, ReferenceLabel, Role

PREVIEW = "/api/projects/{}/export/preview"
DOWNLOAD = "/api/projects/{}/export"


@pytest.fixture
def campaign(seed, db):
    """Six prompts of 3 responses (3 pairs a ranking). a and b rank p0–p3 and p5 alike; a alone ranks p4; c ranks p0
    and flags it; p5 is gold."""
    rows = [{"id": f"p{i}", "prompt": f"question {i}", "responses": [f"x{i}", f"y{i}", f"z{i}"]} for i in range(6)]
    project = seed.project(rows, name="form project")
    a, b, c = seed.annotators(3)
    for i in (0, 1, 2, 3, 5):
        seed.label(project, f"p{i}", a, [[0], [1], [2]])
        seed.label(project, f"p{i}", b, [[0], [1], [2]])
    seed.label(project, "p4", a, [[0], [1], [2]])
    seed.label(project, "p0", c, [[2], [1], [0]], flag="harmful", flag_reason="test")
    db.execute(update(Prompt).where(Prompt.project_id == project.id, Prompt.external_id == "p5").values(is_gold=True))
    db.commit()
    return project


def _rows(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


ALL_FILTERS = {"exclude_gold": "true", "exclude_flagged": "true", "min_annotators": "2", "dedupe": "true"}


def test_preview_counts_each_filter_by_hand(client, make_user, bearer, campaign):
    body = client.get(PREVIEW.format(campaign.id), params=ALL_FILTERS, headers=bearer(make_user(Role.researcher))).json()
    assert body["unit"] == "pairs"
    # 5 prompts x 2 labels x 3 pairs + p4 (3) + c on p0 (3) = 36
    assert body["before_filters"] == 36
    steps = [(s["filter"], s["removed"], s["remaining"]) for s in body["steps"]]
    assert steps == [
        ("exclude_gold", 6, 30),  # p5's two labels
        ("exclude_flagged", 3, 27),  # c's label on p0
        ("min_annotators", 3, 24),  # p4, labelled by a alone
        ("dedupe", 12, 12),  # a and b gave the same pairs on p0–p3
    ]
    assert (body["rows"], body["prompts"]) == (12, 4)


@pytest.mark.parametrize(
    "params",
    [
        ALL_FILTERS,
        {},
        {"format": "listwise", "min_annotators": "2"},
        {"format": "raw", "exclude_flagged": "true"},
        {"pairs": "adjacent", "min_agreement": "0.9"},
    ],
)
def test_preview_matches_what_the_download_holds(client, make_user, bearer, campaign, params):
    headers = bearer(make_user(Role.researcher))
    preview = client.get(PREVIEW.format(campaign.id), params=params, headers=headers).json()
    assert preview["rows"] == len(_rows(client.get(DOWNLOAD.format(campaign.id), params=params, headers=headers)))
    # ... and every step's remaining is what the download holds with the filters up to that step
    asked: dict[str, str] = {k: v for k, v in params.items() if k in ("format", "pairs")}
    for step in preview["steps"]:
        asked[step["filter"]] = params[step["filter"]]
        assert step["remaining"] == len(_rows(client.get(DOWNLOAD.format(campaign.id), params=asked, headers=headers)))


def test_preview_errors_are_by_field_in_words(client, make_user, bearer, campaign):
    headers = bearer(make_user(Role.researcher))
    r = client.get(PREVIEW.format(campaign.id), params={"format": "listwise", "margin": "rank_distance"}, headers=headers)
    assert r.status_code == 422 and "only the pair formats" in r.json()["errors"]["margin"]
    r = client.get(PREVIEW.format(campaign.id), params={"min_agreement": "lots"}, headers=headers)
    assert r.status_code == 422 and "valid number" in r.json()["errors"]["min_agreement"]
    r = client.get(PREVIEW.format(campaign.id), params={"labels": "reference"}, headers=headers)
    assert r.status_code == 422 and "no imported reference labels" in r.json()["errors"]["labels"]
    r = client.get(PREVIEW.format(campaign.id), params={"margin": "llama2_small"}, headers=headers)
    assert r.status_code == 422 and "strength scale" in r.json()["errors"]["margin"]


class TestFormRoute:
    def test_bad_options_bring_the_project_page_back_with_the_error_beside_the_field(self, login_as, make_user, campaign):
        browser = login_as(make_user(Role.researcher))
        page = browser.get(
            f"/projects/{campaign.id}/export", params={"format": "listwise", "margin": "rank_distance", "seed": "3"}
        )
        assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
        assert 'id="export-form"' in page.text and 'id="progress-table"' in page.text  # the project page
        error = page.text.split('id="export-margin-error"')[1].split("</span>")[0]
        assert "only the pair formats" in error and "hidden" not in error.split(">")[0]
        assert '<option value="listwise" selected>' in page.text and 'name="seed" value="3"' in page.text  # choices kept
        assert '"detail"' not in page.text

    def test_good_options_go_on_to_the_download(self, login_as, make_user, campaign):
        browser = login_as(make_user(Role.researcher))
        r = browser.get(f"/projects/{campaign.id}/export", params={"format": "trl", "dedupe": "true"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith(
            f"/api/projects/{campaign.id}/export?format=trl&dedupe=true"
        )
        # 36 pairs less the 15 of b that repeat a's (p0–p3, p5); c's reversed pairs on p0 are new
        assert len(_rows(browser.get(r.headers["location"]))) == 21

    def test_options_that_do_not_apply_are_not_offered(self, login_as, make_user, campaign, db, seed):
        browser = login_as(make_user(Role.researcher))
        html = browser.get(f"/projects/{campaign.id}").text
        assert 'value="reference"' not in html and 'data-fixed="labels"' in html and "no imported reference labels" in html
        assert 'value="llama2_small"' not in html and 'value="rank_distance"' in html
        prompt = db.scalar(select(Prompt).where(Prompt.project_id == campaign.id, Prompt.external_id == "p1"))
        ids = [r.id for r in seed.responses(campaign, "p1")]
        db.add(ReferenceLabel(prompt_id=prompt.id, source="test", ranking=[[ids[0]], [ids[1]], [ids[2]]]))
        db.commit()
        html = browser.get(f"/projects/{campaign.id}").text
        assert '<option value="reference"' in html

    def test_the_download_api_refuses_what_does_not_apply(self, client, make_user, bearer, campaign):
        r = client.get(DOWNLOAD.format(campaign.id), params={"labels": "reference"}, headers=bearer(make_user(Role.admin)))
        assert r.status_code == 422 and "no imported reference labels" in r.json()["detail"]


class TestPermissions:
    @pytest.mark.parametrize("path", ["/api/projects/{}/export/preview", "/projects/{}/export"])
    def test_anonymous(self, client, campaign, path):
        r = client.get(path.format(campaign.id), follow_redirects=False)
        assert r.status_code in (401, 303)
        if r.status_code == 303:
            assert "/login" in r.headers["location"]

    @pytest.mark.parametrize("path", ["/api/projects/{}/export/preview", "/projects/{}/export"])
    def test_annotator_member_is_403(self, client, make_user, bearer, campaign, db, path):
        from app.projects import service

        annotator = make_user(Role.annotator)
        service.add_member(session=db, project=campaign, user=annotator)
        db.commit()
        assert client.get(path.format(campaign.id), headers=bearer(annotator)).status_code == 403

    @pytest.mark.parametrize("path", ["/api/projects/{}/export/preview", "/projects/{}/export"])
    def test_non_member_annotator_is_404(self, client, make_user, bearer, campaign, path):
        assert client.get(path.format(campaign.id), headers=bearer(make_user(Role.annotator))).status_code == 404

    @pytest.mark.parametrize("role", [Role.researcher, Role.admin])
    def test_staff(self, client, make_user, bearer, campaign, role):
        assert client.get(PREVIEW.format(campaign.id), headers=bearer(make_user(role))).status_code == 200
