"""Projects with prompts imported as users import them, and labels written straight to the database as the annotation
service stores them (tiers of response ids), so a test sets up exactly the ties, strengths, flags and annotator counts
it is about (export, leaderboard, reward models); the `seed` fixture (tests/conftest.py) hands one out."""

import io
from datetime import timedelta

import orjson
from sqlalchemy import select

from app.models import Annotation, Assignment, Prompt, Response, Role
from app.models.base import utcnow
from app.prompts import service as prompts_service


class Seeder:
    def __init__(self, db, make_user, make_project):
        self.db, self.make_user, self.make_project = db, make_user, make_project

    def project(self, rows: list[dict], **fields):
        project = self.make_project(**fields)
        content = b"\n".join(orjson.dumps(r) for r in rows)
        self.db.commit()
        result = prompts_service.import_batch(
            session=self.db, project=project, stream=io.BytesIO(content), filename="b.jsonl", uploaded_by=None
        )
        assert result.ok, result.errors
        self.db.commit()
        return project

    def annotators(self, n: int):
        return [self.make_user(Role.annotator) for _ in range(n)]

    def responses(self, project, external_id: str) -> list[Response]:
        prompt = self.db.scalar(select(Prompt).where(Prompt.project_id == project.id, Prompt.external_id == external_id))
        return list(self.db.scalars(select(Response).where(Response.prompt_id == prompt.id).order_by(Response.position)))

    def label(self, project, external_id: str, annotator, tiers: list[list[int]] | None, **fields) -> Annotation:
        """`tiers` holds response positions (0 = first uploaded); stored as response ids like the app does."""
        responses = self.responses(project, external_id)
        ids = [r.id for r in responses]
        shown = list(reversed(ids))
        assignment = Assignment(
            project_id=project.id,
            prompt_id=responses[0].prompt_id,
            annotator_id=annotator.id,
            status="done",
            lease_expires_at=utcnow() + timedelta(minutes=30),
            shown_order=shown,
        )
        self.db.add(assignment)
        self.db.flush()
        annotation = Annotation(
            assignment_id=assignment.id,
            project_id=project.id,
            prompt_id=responses[0].prompt_id,
            annotator_id=annotator.id,
            kind=project.kind,
            ranking=[[ids[i] for i in tier] for tier in tiers] if tiers else None,
            shown_order=shown,
            time_spent_ms=1234,
            **fields,
        )
        self.db.add(annotation)
        self.db.commit()
        return annotation
