"""Every ORM model; importing this package registers all mappers (for the app and Alembic)."""

from app.models.annotation import Annotation, AnnotationRevision, Assignment, AssignmentStatus
from app.models.base import Base
from app.models.project import ImportBatch, Project, ProjectAudit, ProjectKind, ProjectMember
from app.models.prompt import Prompt, Response
from app.models.report import ReportCache, ReportEpoch
from app.models.user import ApiToken, AppSecret, HeavyRequest, LoginAttempt, PasswordReset, Role, User, UserSession

__all__ = [
    "Annotation",
    "AnnotationRevision",
    "ApiToken",
    "AppSecret",
    "Assignment",
    "AssignmentStatus",
    "Base",
    "HeavyRequest",
    "ImportBatch",
    "LoginAttempt",
    "PasswordReset",
    "Project",
    "ProjectAudit",
    "ProjectKind",
    "ProjectMember",
    "Prompt",
    "ReportCache",
    "ReportEpoch",
    "Response",
    "Role",
    "User",
    "UserSession",
]
