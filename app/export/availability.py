"""Which export options apply to a project: the one owner of the rules the options model cannot know alone.
Light (no numpy, no pyarrow): the project page builds its export form from it."""

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.errors import Unprocessable
from app.export.options import ExportOptions, field_errors
from app.models import Project, Prompt, ReferenceLabel, shown_in


def reference_sources(*, session: Session, project: Project) -> list[str]:
    """The project's reference sources (AI judges, imported datasets), by name."""
    return list(
        session.scalars(
            select(ReferenceLabel.source)
            .join(Prompt, Prompt.id == ReferenceLabel.prompt_id)
            .where(shown_in(project.id))
            .distinct()
            .order_by(ReferenceLabel.source)
        )
    )


def reference_source(*, session: Session, project: Project, options: ExportOptions) -> str:
    """The source a labels=reference export reads: `options.source`, or the project's only one. One source an export:
    each prompt then has one reference label, as the formats' rows expect."""
    sources = reference_sources(session=session, project=project)
    if not sources:
        message = "reference is not available: this project has no imported reference labels"
        raise Unprocessable(f"labels: {message}", details={"labels": message})
    if options.source is None:
        if len(sources) == 1:
            return sources[0]
        message = f"this project has reference labels from {len(sources)} sources; choose one: {', '.join(sources)}"
    elif options.source in sources:
        return options.source
    else:
        message = f"unknown source {options.source!r}; this project's sources: {', '.join(sources)}"
    raise Unprocessable(f"source: {message}", details={"source": message})


def check(*, project: Project, options: ExportOptions) -> None:
    """What the options model cannot know alone: whether this project has what they ask for."""
    if options.margin in ("llama2_small", "llama2_large") and not project.strength_scale:
        raise Unprocessable(
            f"margin: {options.margin} needs a pairwise project with a strength scale; use margin=rank_distance or none"
        )


def unavailable_choices(*, session: Session, project: Project) -> dict[str, dict[str, str]]:
    """Option values that do not apply to this project, and why: the form does not offer them, and
    check_applicable refuses them."""
    unavailable: dict[str, dict[str, str]] = {}
    has_reference = session.scalar(select(exists().where(ReferenceLabel.prompt_id == Prompt.id, shown_in(project.id))))
    if not has_reference:
        unavailable["labels"] = {"reference": "this project has no imported reference labels"}
    if not project.strength_scale:
        why = "needs a pairwise project with a strength scale"
        unavailable["margin"] = {"llama2_small": why, "llama2_large": why}
    return unavailable


def check_applicable(*, session: Session, project: Project, options: ExportOptions) -> None:
    """check(), and that every option value applies to this project: Unprocessable whose details are the errors
    by field (app.export.options.field_errors)."""
    try:
        check(project=project, options=options)
    except Unprocessable as exc:
        raise Unprocessable(exc.message, details=field_errors(exc)) from None
    for name, choices in unavailable_choices(session=session, project=project).items():
        value = getattr(options, name)
        if value in choices:
            message = f"{value} is not available: {choices[value]}"
            raise Unprocessable(f"{name}: {message}", details={name: message})
    if options.labels == "reference":
        reference_source(session=session, project=project, options=options)
