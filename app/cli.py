"""The `preflab` command line: serve, users, projects, import, export, demo."""

import inspect
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, get_args, get_origin

import typer
from sqlalchemy.orm import Session

from app.agreement.schemas import AgreementReport, PositionBias
from app.annotation.overlap import DEFAULT_OVERLAP
from app.config import get_settings
from app.db import Database
from app.errors import AppError
from app.export.options import ExportOptions
from app.leaderboard.schemas import Leaderboard
from app.models import ProjectKind, Role
from app.rewardmodels.schemas import RewardModelReport
from app.text import validation_messages

cli = typer.Typer(help="Preflab: collect human preference labels for reward models.", no_args_is_help=True)
user_cli = typer.Typer(help="Manage users.", no_args_is_help=True)
project_cli = typer.Typer(help="Manage projects.", no_args_is_help=True)
cli.add_typer(user_cli, name="user")
cli.add_typer(project_cli, name="project")


def _database(*, migrate_first: bool = True) -> Database:
    database = Database(get_settings())
    if migrate_first:
        from app import migrate  # Alembic: not loaded by `preflab serve`'s server process (see serve)

        migrate.upgrade(database.engine)
    return database


def _migrate() -> None:
    _database().dispose()


def _migrate_in_child() -> multiprocessing.process.BaseProcess:
    """The migrations, in a child process: forked where the platform can (it starts with this process's imports)."""
    if hasattr(os, "fork"):
        process: multiprocessing.process.BaseProcess = multiprocessing.get_context("fork").Process(target=_migrate)
    else:
        process = multiprocessing.get_context("spawn").Process(target=_migrate)
    process.start()
    return process


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


class _Transaction:
    """`with _Transaction() as session:` — commit on success; AppErrors become a clean exit 1."""

    def __enter__(self) -> Session:
        self.database = _database()
        self.session = self.database.sessionmaker()
        self.session.begin()
        return self.session

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()
            self.database.dispose()
        if isinstance(exc, AppError):
            _fail(exc.message)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(envvar="HOST", help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
) -> None:
    """Apply migrations, then run the web app with uvicorn."""
    # Alembic, and what the migrations import, never load into the server: ~8 MiB of its idle RSS (BENCHMARKS.md,
    # "Warm-up"). The child migrates while this process imports the app, so the start does not wait longer.
    migration = _migrate_in_child()
    import uvicorn

    if workers == 1 and not reload:
        import app.main  # noqa: F401 -- what uvicorn.run would import first, in this process
    migration.join()
    if migration.exitcode != 0:
        _fail("the database migrations failed (see above); not serving")
    typer.echo(f"Preflab on http://{host}:{port}  (database: {get_settings().DATABASE_URL.split('@')[-1]})")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=True,
        forwarded_allow_ips=get_settings().FORWARDED_ALLOW_IPS,
    )


@cli.command()
def migrate_db() -> None:
    """Apply database migrations and exit."""
    _database().dispose()
    typer.echo("database is at the latest migration")


@user_cli.command("create")
def user_create(
    email: str,
    role: Annotated[Role, typer.Option(help="admin, researcher or annotator")] = Role.annotator,
    password: Annotated[str | None, typer.Option(help="Login password (8+ characters)")] = None,
    name: Annotated[str, typer.Option(help="Display name")] = "",
    token: Annotated[bool, typer.Option("--token", help="Also create and print an API token")] = False,
    project: Annotated[list[str] | None, typer.Option(help="Add to this project (name or id); repeatable")] = None,
) -> None:
    """Create a user (optionally print an API token for scripts)."""
    from pydantic import ValidationError

    from app.projects import service as projects
    from app.users import service as users
    from app.users.schemas import UserCreate

    try:
        data = UserCreate(email=email, role=role, password=password, name=name)
    except ValidationError as exc:
        _fail("; ".join(validation_messages(exc.errors())))
    with _Transaction() as session:
        user = users.create_user(session=session, data=data)
        for name_or_id in project or []:
            projects.add_member(session=session, project=projects.find_project(session=session, name_or_id=name_or_id), user=user)
        typer.echo(f"created {user.role} {user.email} (id {user.id})")
        if token:
            _, secret = users.create_api_token(session=session, user=user, name="cli")
            typer.echo(f"API token (shown once): {secret}")


@project_cli.command("create")
def project_create(
    name: str,
    kind: Annotated[ProjectKind, typer.Option(help="ranking or pairwise")] = ProjectKind.ranking,
    overlap: Annotated[int, typer.Option(help="Distinct annotators wanted per prompt")] = DEFAULT_OVERLAP,
    allow_ties: Annotated[bool, typer.Option(help="Let annotators mark ties")] = False,
    strength: Annotated[list[str] | None, typer.Option(help="Pairwise strength level, strongest first; repeatable")] = None,
    guidelines: Annotated[Path | None, typer.Option(help="Markdown file with annotator guidelines")] = None,
    adaptive_threshold: Annotated[
        float | None, typer.Option(help="Adaptive overlap: agreement (0-1) below which a prompt gets one more annotator")
    ] = None,
    max_overlap: Annotated[int | None, typer.Option(help="Adaptive overlap: most annotators a prompt can get")] = None,
    revisions_open: Annotated[bool, typer.Option(help="Annotators may revise their submitted labels")] = True,
) -> None:
    """Create a project."""
    from pydantic import ValidationError

    from app.projects import service as projects
    from app.projects.schemas import ProjectCreate

    try:
        data = ProjectCreate(
            name=name,
            kind=kind,
            overlap=overlap,
            allow_ties=allow_ties,
            strength_scale=strength or None,
            guidelines=guidelines.read_text(encoding="utf-8") if guidelines else "",
            adaptive_threshold=adaptive_threshold,
            max_overlap=max_overlap,
            revisions_open=revisions_open,
        )
    except ValidationError as exc:
        _fail("; ".join(validation_messages(exc.errors())))
    with _Transaction() as session:
        project = projects.create_project(session=session, data=data, created_by=None)
        typer.echo(f"created {project.kind} project {project.name!r} (id {project.id})")


@project_cli.command("edit")
def project_edit(
    project: str,
    name: Annotated[str | None, typer.Option(help="New name")] = None,
    overlap: Annotated[int | None, typer.Option(help="Annotators per prompt (raising it reopens complete prompts)")] = None,
    max_overlap: Annotated[int | None, typer.Option(help="Adaptive overlap: most annotators a prompt can get")] = None,
    adaptive_threshold: Annotated[float | None, typer.Option(help="Adaptive overlap: agreement (0-1) threshold")] = None,
    lease_minutes: Annotated[int | None, typer.Option(help="Lease length in minutes; 0: the LEASE_MINUTES setting")] = None,
    min_responses: Annotated[int | None, typer.Option(help="Fewest responses a prompt may have")] = None,
    max_responses: Annotated[int | None, typer.Option(help="Most responses a prompt may have")] = None,
    allow_ties: Annotated[bool | None, typer.Option("--allow-ties/--no-allow-ties", help="Let annotators mark ties")] = None,
    strength: Annotated[list[str] | None, typer.Option(help="Pairwise strength level, strongest first; repeatable")] = None,
    guidelines: Annotated[Path | None, typer.Option(help="Markdown file with annotator guidelines")] = None,
) -> None:
    """Change a project's settings (only the options given), checked as at creation; each change is logged."""
    from pydantic import ValidationError

    from app.projects import service as projects
    from app.projects.schemas import ProjectUpdate

    given: dict[str, Any] = {
        "name": name,
        "overlap": overlap,
        "max_overlap": max_overlap,
        "adaptive_threshold": adaptive_threshold,
        "lease_minutes": lease_minutes,
        "min_responses": min_responses,
        "max_responses": max_responses,
        "allow_ties": allow_ties,
        "strength_scale": strength,
        "guidelines": guidelines.read_text(encoding="utf-8") if guidelines else None,
    }
    changes = {field: value for field, value in given.items() if value is not None}
    if lease_minutes == 0:
        changes["lease_minutes"] = None  # back to the global setting
    if not changes:
        _fail("nothing to change: give at least one option (see --help)")
    try:
        changes = ProjectUpdate.model_validate(changes).model_dump(exclude_unset=True)
    except ValidationError as exc:
        _fail("; ".join(f"--{line.replace('_', '-')}" for line in validation_messages(exc.errors())))
    with _Transaction() as session:
        target = projects.find_project(session=session, name_or_id=project)
        changed = projects.edit_project(session=session, project=target, changes=changes, user=None)
        typer.echo(f"{target.name!r}: changed {', '.join(changed)}" if changed else f"{target.name!r}: nothing changed")


@project_cli.command("archive")
def project_archive(
    project: str,
    undo: Annotated[bool, typer.Option("--undo", help="Unarchive: make it visible to its annotators again")] = False,
) -> None:
    """Archive a project: read-only, hidden from annotators, still exportable (--undo to unarchive)."""
    from app.projects import service as projects

    with _Transaction() as session:
        target = projects.find_project(session=session, name_or_id=project)
        projects.set_archived(session=session, project=target, archived=not undo, user=None)
        typer.echo(f"{target.name!r} is {'archived' if target.archived else 'open'}")


@project_cli.command("delete")
def project_delete(
    project: str,
    confirm: Annotated[str | None, typer.Option(help="The project's exact name, to confirm")] = None,
) -> None:
    """Delete a project and everything under it (prompts, labels, imports, members)."""
    from app.projects import service as projects

    with _Transaction() as session:
        target = projects.find_project(session=session, name_or_id=project)
        name = target.name
        projects.delete_project(session=session, project=target, confirm=confirm, user=None)
        typer.echo(f"deleted project {name!r}")


@project_cli.command("add-member")
def project_add_member(project: str, email: list[str]) -> None:
    """Let users annotate a project."""
    from app.projects import service as projects
    from app.users import service as users

    with _Transaction() as session:
        target = projects.find_project(session=session, name_or_id=project)
        for address in email:
            user = users.get_user_by_email(session=session, email=address)
            if user is None:
                _fail(f"no user with email {address!r}")
            projects.add_member(session=session, project=target, user=user)
        typer.echo(f"{len(email)} member(s) added to {target.name!r}")


@project_cli.command("list")
def project_list() -> None:
    """List projects with their counts."""
    from sqlalchemy import select

    from app.models import Project
    from app.projects import service as projects

    with _Transaction() as session:
        for p in session.scalars(select(Project).order_by(Project.id)):
            s = projects.project_stats(session=session, project=p)
            typer.echo(
                f"{p.id:>4}  {p.name:<40} {p.kind:<9} prompts {s.prompts:>7}  annotations {s.annotations:>7}  complete {s.complete:>7}"
            )


@cli.command("import")
def import_file(
    project: str,
    file: Path,
    format: Annotated[
        str, typer.Option(help="auto, prompts, a preference format (trl, trl-chat, hh, ultrafeedback), or listwise")
    ] = "auto",
    source: Annotated[
        str | None, typer.Option(help='Name of the reference labels the judgements become (default "<format>: <file>")')
    ] = None,
) -> None:
    """Import a JSONL, JSON or CSV batch of prompts with responses, or judgements (preference pairs, listwise
    rankings) as a named reference source (all or nothing)."""
    from app.projects import service as projects
    from app.prompts import service as prompts

    if not file.is_file():
        _fail(f"no such file: {file}")
    with _Transaction() as session, file.open("rb") as stream:
        target = projects.find_project(session=session, name_or_id=project)
        result = prompts.import_batch(
            session=session,
            project=target,
            stream=stream,
            filename=file.name,
            uploaded_by=None,
            record_format=format,
            source=source,
        )
        if not result.ok:
            for line in result.errors:
                typer.secho(f"  {line}", fg=typer.colors.RED, err=True)
            _fail(f"nothing imported: {result.total_errors} error(s) in {file}")
        typer.echo(f"imported {result.imported}, skipped {result.skipped} already present, {result.references} reference labels")


def export_file(project: str, out: Path = Path("-"), **given: Any) -> None:
    """Export labels as TRL / HH / listwise / raw rows: a JSONL, gzip JSONL or Parquet file, or a dataset
    folder (--folder: data per split, README.md card, manifest.json) that datasets.load_dataset() reads."""
    import time

    from pydantic import ValidationError

    from app.export import service as export
    from app.export.options import ExportOptions
    from app.projects import service as projects

    try:
        options = ExportOptions.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        _fail("; ".join(f"--{line.replace('_', '-')}" for line in validation_messages(exc.errors())))
    to_stdout = str(out) == "-"
    if to_stdout and (options.folder or options.file_type != "jsonl"):
        _fail("--out: give a file or directory path; only plain JSONL goes to stdout")
    database = _database()
    state = {"prompts": 0, "shown": 0.0}

    def progress(rows: int) -> None:  # a stderr counter, at most once a second
        state["prompts"] += 1
        if time.monotonic() - state["shown"] >= 1:
            state["shown"] = time.monotonic()
            typer.echo(f"\r  {state['prompts']:,}/{state['total']:,} prompts, {rows:,} rows", err=True, nl=False)

    try:
        with database.read_sessionmaker() as session, session.begin():
            target = projects.find_project(session=session, name_or_id=project)
            export.check(project=target, options=options)
            state["total"] = export.count_prompts(session=session, project=target, options=options)
            if options.folder:
                manifest = export.write_folder(session=session, project=target, options=options, directory=out, progress=progress)
                counts = manifest["counts"]
            elif to_stdout:
                for chunk in export.stream_file(session=session, project=target, options=options):
                    sys.stdout.buffer.write(chunk)
                counts = None
            else:
                counts = export.write_file(session=session, project=target, options=options, path=out, progress=progress)
                export.write_sidecar(project=target, options=options, counts=counts, path=out)
    except AppError as exc:
        _fail(exc.message)
    finally:
        database.dispose()
    if counts is not None:
        rows = sum(counts["rows"].values())
        splits = ", ".join(f"{s} {n}" for s, n in counts["rows"].items()) if len(counts["rows"]) > 1 else ""
        typer.echo(f"\r{' ' * 60}\r", err=True, nl=False)
        typer.echo(
            f"wrote {rows} {'pairs' if options.is_pairs else 'rows'} to {out}" + (f" ({splits})" if splits else ""), err=True
        )


def _export_signature() -> None:
    """Typer reads the command's signature: build it from ExportOptions, so the CLI offers exactly the
    options the API and the form take (bools as --flag/--no-flag, the rest validated by the model)."""
    params = [
        inspect.Parameter("project", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
        inspect.Parameter(
            "out",
            inspect.Parameter.KEYWORD_ONLY,
            default=Path("-"),
            annotation=Annotated[
                Path, typer.Option(help="Output file ('-': stdout, plain JSONL only), or the directory with --folder")
            ],
        ),
    ]
    for name, info in ExportOptions.model_fields.items():
        flag = "--" + name.replace("_", "-")
        annotation: Any
        if info.annotation is bool:
            annotation = Annotated[
                bool | None, typer.Option(f"{flag}/--no-{flag[2:]}", help=info.description, show_default=False)
            ]
        else:
            choices = get_args(info.annotation) if get_origin(info.annotation) is Literal else ()
            hint = f" (one of {', '.join(choices)}; default {info.default})" if choices else f" (default {info.default})"
            annotation = Annotated[str | None, typer.Option(flag, help=(info.description or "") + hint, show_default=False)]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    export_file.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # typer reads the options from it
    export_file.__annotations__ = {p.name: p.annotation for p in params}


_export_signature()
cli.command("export")(export_file)


@cli.command()
def agreement(
    project: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON")] = False,
) -> None:
    """Agreement metrics, per annotator and the most disputed prompts."""
    import orjson

    from app.agreement import service as agreement_service
    from app.projects import service as projects

    with _Transaction() as session:
        report = agreement_service.project_report(
            session=session, project=projects.find_project(session=session, name_or_id=project)
        )
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n")
        return
    for line in format_report(report):
        typer.echo(line)


def format_report(report: AgreementReport) -> list[str]:
    """The readable table of `preflab agreement` (the same numbers as the JSON and the dashboard)."""
    from app.agreement.formatting import headline, metric, number, p_value, percent, share, warnings

    s = report.summary
    lines = [
        headline(report),
        *warnings(report),
        f"{report.project_name} ({report.kind}): {s.labels} labels, {s.annotators} annotators, "
        f"{s.prompts} prompts ({s.prompts_with_2plus} with 2+ annotators)",
    ]
    if s.even_splits:
        lines.append(
            f"{s.even_splits} response pairs split evenly between annotators (no majority; a two-response prompt's consensus is then a tie)"
        )
    lines.append(f"Labels submitted in the order shown, untouched: {share(s.untouched_labels, s.ranked_labels)}")
    lines += ["", "PROJECT"]
    lines += [f"  {name:<40} {metric(m):>8}   {m.reason or ''}" for name, m in report.project.items()]
    lines += [f"  rating {name:<33} {metric(m):>8}   {m.reason or ''}" for name, m in report.criteria.items()]
    if report.kind == "ranking":
        lines.append("  (Kendall's W is not chance-corrected: random rankings by m annotators give about 1/m)")
    for reference in report.references:
        lines += [
            "",
            f"AGREEMENT WITH {reference.source} ({reference.prompts} prompts; {reference.labels} labels)",
        ]
        for convention in ("tie_as_category", "tie_half", "strict_only"):
            m = getattr(reference, f"agreement_{convention}")
            lines.append(f"  {'agreement_' + convention:<40} {metric(m):>8}   {m.reason or ''}")
        for a in sorted(report.annotators, key=lambda a: a.email or ""):
            if (mine := (a.reference_agreements or {}).get(reference.source)) is not None:
                m = mine["tie_half"]
                lines.append(f"  {(a.email or str(a.annotator_id))[:40]:<40} {metric(m):>8}   tie_half, n {m.n}")
    lines += [
        "",
        "ANNOTATORS",
        f"  {'annotator':<32} {'labels':>6} {'vs others':>9} {'> chance p':>10} {'first on top':>12} {'chance':>7} "
        f"{'p':>8} {'untouched':>9} {'median s':>8} {'skips':>6} {'flags':>6} {'gold':>6}",
    ]
    for a in sorted(report.annotators, key=lambda a: a.email or ""):
        bias = a.position_bias or PositionBias(observed=None, expected=None, hits=0, n=0, p_value=None)
        lines.append(
            f"  {(a.email or str(a.annotator_id))[:32]:<32} {a.n_annotations or a.n_labels:>6} "
            f"{metric(a.loo_agreement):>9} {p_value(a.above_chance.p_value if a.above_chance else None):>10} "
            f"{percent(bias.observed):>12} {percent(bias.expected):>7} "
            f"{p_value(bias.p_value):>8} {percent(a.untouched_rate):>9} {a.median_seconds or '':>8} "
            f"{percent(a.skip_rate):>6} {percent(a.flag_rate):>6} {percent(a.gold_accuracy):>6}"
        )
    lines += ["", "MOST DISPUTED PROMPTS"]
    lines += [
        f"  {p.external_id:<40} agreement {number(p.agreement, 2)}  annotators {p.n_annotators}"
        for p in report.most_disputed[:10]
    ] or ["  (no prompt has 2 annotators yet)"]
    return lines


@cli.command()
def leaderboard(
    project: str,
    exclude_annotator: Annotated[
        list[str] | None, typer.Option(help="Leave out this annotator's labels (email or user id); repeatable")
    ] = None,
    min_agreement: Annotated[
        float | None, typer.Option(help="Only prompts whose agreement (tie = ½, among the annotators kept) is at least this")
    ] = None,
    criterion: Annotated[
        str | None, typer.Option(help="Decisions from this rating criterion's scores instead of the rankings")
    ] = None,
    baseline: Annotated[str | None, typer.Option(help="Model rated 1000 (default: the mean of all models)")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of prompts (at least 200)")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the leaderboard as JSON (the API's shape)")] = False,
) -> None:
    """Bradley–Terry ratings of the responses' models from the human decisions, with 95 % bootstrap intervals."""
    import orjson
    from pydantic import ValidationError

    from app.leaderboard import service as leaderboard_service
    from app.leaderboard.schemas import LeaderboardOptions
    from app.projects import service as projects
    from app.users import service as users

    with _Transaction() as session:
        excluded = []
        for who in exclude_annotator or []:
            user = None if who.isdigit() else users.get_user_by_email(session=session, email=who)
            if user is None and not who.isdigit():
                _fail(f"--exclude-annotator: no user with email {who!r}")
            excluded.append(int(who) if user is None else user.id)
        try:
            options = LeaderboardOptions(
                exclude_annotator=excluded,
                min_agreement=min_agreement,
                criterion=criterion,
                baseline=baseline,
                resamples=resamples,
                seed=seed,
            )
        except ValidationError as exc:
            _fail("; ".join(f"--{line.replace('_', '-')}" for line in validation_messages(exc.errors())))
        board = leaderboard_service.leaderboard(
            session=session, project=projects.find_project(session=session, name_or_id=project), options=options
        )
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(board.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n")
        return
    for line in format_leaderboard(board):
        typer.echo(line)


@cli.command("rm-upload")
def rm_upload(
    project: str,
    name: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Score file (JSON Lines)")],
    replace: Annotated[bool, typer.Option(help="Replace the reward model of this name")] = False,
) -> None:
    """Store a reward model's scores under NAME (docs/reward-models.md); all rows or none."""
    from app.projects import service as projects
    from app.rewardmodels import service as rm

    with _Transaction() as session, file.open("rb") as stream:
        outcome = rm.upload(
            session=session,
            project=projects.find_project(session=session, name_or_id=project),
            name=name,
            stream=stream,
            filename=file.name,
            user=None,
            replace=replace,
            depth=get_settings().MAX_METADATA_DEPTH,
        )
        if outcome.result is None:
            session.rollback()
            _fail(f"nothing stored: {outcome.total_errors} error(s)\n" + "\n".join(outcome.errors))
    typer.echo(
        f"{name}: stored {outcome.result.scored} scores" + (" (replaced the earlier upload)" if outcome.result.replaced else "")
    )


@cli.command("rm-eval")
def rm_eval(
    project: str,
    name: Annotated[str | None, typer.Argument(help="One reward model's full report; without it, all side by side")] = None,
    consensus: Annotated[str, typer.Option(help="Consensus method for accuracy vs consensus")] = "borda",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (the API's shape)")] = False,
) -> None:
    """A reward model's accuracy against the human decisions, the human ceiling, breakdowns and calibration."""
    import orjson
    from pydantic import ValidationError

    from app.projects import service as projects
    from app.rewardmodels import service as rm
    from app.rewardmodels.schemas import ReportOptions

    try:
        options = ReportOptions(consensus=consensus)
    except ValidationError as exc:
        _fail("; ".join(f"--{line}" for line in validation_messages(exc.errors())))
    with _Transaction() as session:
        found = projects.find_project(session=session, name_or_id=project)
        reports = (
            [rm.report(session=session, project=found, name=name, method=options.consensus)]
            if name
            else rm.compare(session=session, project=found, method=options.consensus).reward_models
        )
    if as_json:
        shaped = reports[0].model_dump(mode="json") if name else [r.model_dump(mode="json") for r in reports]
        sys.stdout.buffer.write(orjson.dumps(shaped, option=orjson.OPT_INDENT_2) + b"\n")
        return
    if not reports:
        typer.echo(f"{found.name}: no reward model yet (preflab rm-upload)")
    for line in format_rm_reports(reports, full=name is not None):
        typer.echo(line)


def format_rm_reports(reports: list[RewardModelReport], *, full: bool) -> list[str]:
    """The tables of `preflab rm-eval` (the numbers of the JSON and the page)."""

    def pct(f) -> str:
        return f"{f.value * 100:.1f}% ({f.n})" if f.value is not None else "-"

    def row(label: str, figures) -> str:
        return f"  {label:<44} " + " ".join(f"{pct(figures[c]):>18}" for c in ("strict_only", "tie_half", "tie_as_category"))

    head = f"  {'':<44} {'strict only':>18} {'tie = 1/2':>18} {'tie as category':>18}"
    lines: list[str] = []
    for r in reports:
        lines += [
            f"{r.name}: {r.scored} of {r.decisions} human decisions scored ({r.scored_responses} responses, {r.filename})",
            head,
            row("vs individual decisions", r.individual),
            row(f"vs consensus ({r.consensus_method})", r.consensus),
            row("on the ceiling's pairs", r.model_on_ceiling_pairs),
            row("human ceiling (leave-one-out)", r.ceiling),
        ]
        if full:
            lines += ["", "BY PROMPT AGREEMENT"] + [
                row(f"{level} ({r.prompt_levels[level]} prompts)", f) for level, f in r.by_level.items()
            ]
            lines += ["", "BY MODEL PAIR"] + [row(pair, f) for pair, f in r.by_model_pair.items()]
            lines += ["", "CALIBRATION (predicted sigma(s(a) - s(b)) -> humans preferring a; n)"]
            lines += [
                f"  {b.low:.1f}-{b.high:.1f}  {b.predicted:.3f} -> {b.observed:.3f}  ({b.n})"
                for b in r.calibration
                if b.n and b.predicted is not None and b.observed is not None
            ]
            lines.append(f"  expected calibration error {r.ece:.3f}" if r.ece is not None else "  expected calibration error -")
        lines.append(f"  (reference: {r.reference})")
        lines.append("")
    return lines


def format_leaderboard(board: Leaderboard) -> list[str]:
    """The table of `preflab leaderboard` (the same numbers as the JSON and the page)."""
    lines = [
        f"{board.project_name}: {board.decisions} decisions between models on {board.prompts} prompts by {board.annotators} annotators",
        f"Elo-like scale (400 points = 10:1 odds), 1000 = {board.anchor}; 95 % intervals from "
        f"{board.options.resamples} bootstrap resamples of prompts (seed {board.options.seed})",
    ]
    if board.reason:
        return [*lines, "", f"  ({board.reason})"]
    width = max(len("model"), *(len(m.model) for m in board.models))
    lines += [
        "",
        f"  {'#':>2}  {'model':<{width}} {'rating':>7} {'95% interval':>13} {'decisions':>9} {'wins':>6} {'losses':>6} {'ties':>5}",
    ]
    for rank, m in enumerate(board.models, 1):
        interval = f"{m.ci_low:.0f}–{m.ci_high:.0f}"
        lines.append(
            f"  {rank:>2}  {m.model:<{width}} {m.rating:>7.0f} {interval:>13} {m.decisions:>9} {m.wins:>6} {m.losses:>6} {m.ties:>5}"
        )
    lines += ["", "WIN RATES (row against column: (wins + ½ ties) / decisions, decisions in brackets)"]
    short = [m.model[:12] for m in board.models]
    lines.append(f"  {'':<{width}} " + " ".join(f"{s:>14}" for s in short))
    for row in board.matrix:
        cells = [f"{c.win_rate:.0%} ({c.decisions})" if c.win_rate is not None else "-" for c in row]
        lines.append(f"  {row[0].model:<{width}} " + " ".join(f"{c:>14}" for c in cells))
    left = board.left_out
    lines += [
        "",
        f"left out: {left.same_model} same-model decisions, {left.no_model} without a model, "
        f"{left.prompts_below_agreement} prompts below min agreement, {left.excluded_labels} labels of excluded annotators",
        f"prior: {board.prior}",
    ]
    return lines


@cli.command()
def demo(
    reset: Annotated[bool, typer.Option(help="Delete all data first (never on a production database)")] = False,
    known_passwords: Annotated[
        bool,
        typer.Option(
            "--known-passwords",
            help="Give new demo accounts the published password of the README (trials on this machine only; "
            "never on a server others can reach)",
        ),
    ] = False,
) -> None:
    """Create demo accounts (random passwords, printed once) and two demo projects with realistic prompts."""
    from app import demo as demo_data

    settings = get_settings()
    if reset and settings.ENVIRONMENT == "production":
        _fail("refusing --reset with ENVIRONMENT=production")
    if known_passwords and settings.ENVIRONMENT == "production":
        _fail("refusing --known-passwords with ENVIRONMENT=production")
    if known_passwords:
        typer.secho(
            f"warning: demo accounts created now get the published password {demo_data.KNOWN_PASSWORD!r}; "
            "serve only on 127.0.0.1 (the default of `preflab serve`)",
            fg=typer.colors.YELLOW,
            err=True,
        )
    with _Transaction() as session:
        if reset:
            demo_data.wipe(session)
        for line in demo_data.create(session, known_passwords=known_passwords):
            typer.echo(line)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
