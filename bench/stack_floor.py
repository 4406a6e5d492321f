"""Where a label's server CPU goes, by subtraction. The annotators' loop (next -> submit, as in bench/run.py's annotate)
runs against three versions of its two routes, each on a server of its own against that server's floor:

- "plumbing": stand-ins with the routes' exact signatures (the session, the caller, the settings, the path id, the
  submit's body validated into `AnnotationCreate`), answering a fixed task of the benchmark's sizes and a fixed label
  without touching the database;
- "authentication": the same stand-ins authenticating the caller first (`require_user`: a transaction and one SELECT);
- "the real routes": /api/projects/{id}/next and /api/tasks/{id}/annotations.

The step from one row to the next is what that layer costs a label. The stand-ins are served by the real app with two
extra routes under /bench (`create_app` here, via uvicorn), never by `preflab serve`. BENCHMARKS.md "Annotate
against the stack's floor". 127.0.0.1 only, bounded in time.

    .venv/bin/python bench/stack_floor.py [--postgres URL] [--annotators 8 32] [--seconds 20]
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from bench.annotators import annotate_against_floor
from bench.common import sqlite_url, synthetic_items
from bench.run import ANNOTATE_PROMPT_CHARS, ANNOTATE_RESPONSE_CHARS, FULL, WORKERS, annotate_setup

STAND_IN = "PREFLAB_BENCH_STAND_IN"  # the server's environment: "plumbing" or "authentication"


def create_app() -> FastAPI:
    """The real app plus the stand-ins of the annotator's two routes under /bench (the kind named by STAND_IN)."""
    from app.main import create_app as create_real_app

    app = create_real_app()
    app.include_router(_stand_ins(authenticate=os.environ[STAND_IN] == "authentication"))
    return app


def _stand_ins(*, authenticate: bool) -> APIRouter:
    from app.annotation.schemas import AnnotationCreate, AnnotationRead, ResponseView, TaskRead
    from app.models import ProjectKind
    from app.models.base import utcnow
    from app.users.dependencies import Caller, require_user
    from app.web.dependencies import SettingsDep
    from app.web.sessions import SessionDep
    from app.web.templating import json_after_session

    item = next(synthetic_items(1, k=4, prompt_chars=ANNOTATE_PROMPT_CHARS, response_chars=ANNOTATE_RESPONSE_CHARS))
    router = APIRouter(prefix="/bench")

    # The signatures are api_next's and api_submit's (app/annotation/routes.py), so FastAPI does the same work.
    @router.get("/projects/{project_id}/next")
    def stand_in_next(project_id: int, session: SessionDep, caller: Caller, settings: SettingsDep) -> Response:
        if authenticate:
            require_user(caller, session)
        task = TaskRead(
            task_id=1,
            project_id=project_id,
            kind=ProjectKind.ranking,
            prompt_id=1,
            prompt=item["prompt"],
            responses=[ResponseView(id=i, text=text, label=chr(ord("A") + i)) for i, text in enumerate(item["responses"])],
            allow_ties=False,
            strength_scale=None,
            rating_criteria=None,
            lease_expires_at=utcnow(),
        )
        return json_after_session(session, task)

    @router.post("/tasks/{task_id}/annotations", status_code=201)
    def stand_in_submit(task_id: int, data: AnnotationCreate, session: SessionDep, caller: Caller) -> Response:
        if authenticate:
            require_user(caller, session)
        label = AnnotationRead(
            id=task_id,
            task_id=task_id,
            prompt_id=1,
            ranking=data.ranking,
            strength=None,
            none_acceptable=False,
            flag=None,
            order_changed=True,
            created_at=utcnow(),
        )
        return json_after_session(session, label, status_code=201)

    return router


def main() -> None:
    parser = argparse.ArgumentParser(description="A label's server CPU, layer by layer, against the floor.")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL database to use (emptied); default: SQLite")
    parser.add_argument("--annotators", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    url = args.postgres or sqlite_url()
    database = "PostgreSQL" if args.postgres else "SQLite"
    clients = max(args.annotators)
    for n in args.annotators:
        setup = annotate_setup(url, annotators=n, prompts=FULL.annotate_prompts)
        previous = None
        for version, api in (("plumbing", "/bench"), ("authentication", "/bench"), ("the real routes", "/api")):
            stand_in = api == "/bench"
            run = annotate_against_floor(
                setup,
                seconds=args.seconds,
                workers=WORKERS,
                clients=clients,
                app_factory="bench.stack_floor:create_app" if stand_in else None,
                env={STAND_IN: version} if stand_in else None,
                api=api,
            )
            step = "" if previous is None else f"; adds {run.cpu_ms - previous:+.1f} ms a label"
            print(f"[{database}] {n} annotators, {version}: {run}{step}", flush=True)
            previous = run.cpu_ms


if __name__ == "__main__":
    main()
