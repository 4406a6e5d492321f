"""The small load test (the long one is bench/load_test.py): simulated annotators against a real
`preflab serve --workers 2` subprocess on the test database (SQLite or TEST_DATABASE_URL), until the
project is fully labelled or 10 s pass; then the database must hold exactly what was accepted."""

import os

from sqlalchemy import func, select, update

from app.models import Annotation, Prompt
from bench.annotators import Stats, check_database, run_annotators, setup_project
from bench.common import serve

ANNOTATORS = 8
PROMPTS = 40
OVERLAP = 3  # fewer than the annotators, so the last slots of each prompt are contended


def test_concurrent_annotators_lose_nothing_and_never_exceed_overlap(database, db):
    url = os.environ["DATABASE_URL"]
    setup = setup_project(url, annotators=ANNOTATORS, prompts=PROMPTS, overlap=OVERLAP, prompt_chars=60, response_chars=80)
    with serve(url, workers=2) as server:
        stats = run_annotators(server.port, setup.project_id, setup.tokens, seconds=10)

    assert stats.errors == [] and stats.server_errors == 0, stats.summary()
    assert check_database(setup, stats) == [], stats.summary()
    stored = db.scalar(select(func.count()).select_from(Annotation).where(Annotation.project_id == setup.project_id))
    assert stored == len(stats.accepted) > 0
    if stats.exhausted == ANNOTATORS:  # everyone ran out of work: every prompt has exactly its overlap
        assert stored == PROMPTS * OVERLAP
        assert set(db.scalars(select(Prompt.completed_count).where(Prompt.project_id == setup.project_id))) == {OVERLAP}


def test_the_checks_catch_a_lost_and_a_doubled_label(database, db):
    """The invariant checker itself: an accepted submit missing from the database, and two labels by one
    annotator on one prompt beyond its overlap, are both reported."""
    url = os.environ["DATABASE_URL"]
    setup = setup_project(url, annotators=2, prompts=3, overlap=1, prompt_chars=60, response_chars=80)
    with serve(url, workers=1) as server:
        stats = run_annotators(server.port, setup.project_id, setup.tokens[:1], seconds=10)
    assert len(stats.accepted) == 3 and check_database(setup, stats) == []

    lost = Stats(accepted=stats.accepted[1:])  # the client "saw" fewer than the database holds
    assert any("never accepted" in p for p in check_database(setup, lost))
    first, second = stats.accepted[0], stats.accepted[1]
    db.rollback()
    db.execute(update(Annotation).where(Annotation.id == second.annotation_id).values(prompt_id=first.prompt_id))
    db.commit()
    problems = " | ".join(check_database(setup, stats))
    assert "pairs with two or more labels" in problems
    assert "over their overlap" in problems
    assert "differ from what was accepted" in problems
