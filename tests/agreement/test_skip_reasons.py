"""Skip reasons are shown: who skipped a prompt, why and when on its page (escaped), and counts by reason on the
dashboard and in the report JSON, checked against the stored assignments."""

import re
from collections import Counter

from sqlalchemy import select

from app.models import Role
from tests.export.test_skips_export import skipped, stored_skips  # noqa: F401  (skipped is a fixture)


def test_prompt_page_lists_who_skipped_why_and_when(db, login_as, make_user, skipped):  # noqa: F811
    project, _ = skipped
    want = stored_skips(db, project)
    browser = login_as(make_user(Role.researcher))
    for prompt_db_id in {r["prompt_db_id"] for r in want}:
        page = browser.get(f"/projects/{project.id}/prompts/{prompt_db_id}")
        assert page.status_code == 200
        section = page.text.split('id="skips"')[1].split("</section>")[0]
        rows = [r for r in want if r["prompt_db_id"] == prompt_db_id]
        assert section.count("<tr>") == len(rows) + 1  # header + one a skip
        for r in rows:
            assert f'title="{r["annotator_email"]}"' in section
            assert r["skipped_at"][:16].replace("T", " ") in section
        assert "<i>unsafe</i>" not in section
        if any(r["reason"] == "<i>unsafe</i>" for r in rows):
            assert "&lt;i&gt;unsafe&lt;/i&gt;" in section
        if any(r["reason"] is None for r in rows):
            assert "(no reason given)" in section
    unskipped = db.scalars(select_unskipped(project, want)).first()
    assert "Nobody skipped this prompt." in browser.get(f"/projects/{project.id}/prompts/{unskipped}").text


def select_unskipped(project, want):
    from app.models import Prompt

    return select(Prompt.id).where(Prompt.project_id == project.id, Prompt.id.not_in({r["prompt_db_id"] for r in want}))


def test_dashboard_and_report_count_skips_by_reason(client, db, login_as, make_user, skipped):  # noqa: F811
    project, staff = skipped
    counts = Counter(r["reason"] for r in stored_skips(db, project))
    report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
    assert report["skip_reasons"] == [
        {"reason": reason, "skips": n} for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] or ""))
    ]
    page = login_as(make_user(Role.admin)).get(f"/projects/{project.id}/agreement").text
    section = page.split('id="skip-reasons"')[1].split("</section>")[0]
    shown = dict(re.findall(r"<tr><td>(.*?)</td><td data-skips>(\d+)</td></tr>", section))
    assert shown == {
        ("(no reason given)" if reason is None else reason.replace("<", "&lt;").replace(">", "&gt;")): str(n)
        for reason, n in counts.items()
    }


def test_annotators_do_not_see_skips(login_as, skipped, make_user):  # noqa: F811
    project, _ = skipped
    annotator = make_user(Role.annotator)
    assert login_as(annotator).get(f"/projects/{project.id}/agreement").status_code == 404


def test_a_project_without_skips_says_so(client, login_as, make_user, make_project):
    project = make_project()
    page = login_as(make_user(Role.researcher)).get(f"/projects/{project.id}/agreement")
    assert "No task has been skipped." in page.text
