"""Every ORM model; importing this package registers all mappers (for the app and Alembic)."""

from app.models.annotation import Annotation, AnnotationRevision, Assignment, AssignmentStatus
from app.models.base import Base
from app.models.project import ImportBatch, ImportStatus, Project, ProjectAudit, ProjectKind, ProjectMember
from app.models.prompt import Prompt, ReferenceLabel, Response, shown_in
from app.models.report import ReportCache, ReportEpoch
from app.models.reward_model import RewardModel, RewardModelScore
from app.models.user import (
    ApiToken,
    AppSecret,
    HeavyRequest,
    Identity,
    LoginAttempt,
    PasswordReset,
    Role,
    SignedIn,
    User,
    UserSession,
)

__all__ = [
    "Annotation",
    "AnnotationRevision",
    "ApiToken",
    "AppSecret",
    "Assignment",
    "AssignmentStatus",
    "Base",
    "HeavyRequest",
    "Identity",
    "ImportBatch",
    "ImportStatus",
    "LoginAttempt",
    "PasswordReset",
    "Project",
    "ProjectAudit",
    "ProjectKind",
    "ProjectMember",
    "Prompt",
    "ReferenceLabel",
    "ReportCache",
    "ReportEpoch",
    "Response",
    "RewardModel",
    "RewardModelScore",
    "Role",
    "SignedIn",
    "User",
    "UserSession",
    "shown_in",
]
