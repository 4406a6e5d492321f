"""Every ORM model; importing this package registers all mappers (for the app and Alembic)."""

from app.models.annotation import Annotation, AnnotationRevision, Assignment, AssignmentStatus
from app.models.base import Base
from app.models.project import ImportBatch, Project, ProjectKind, ProjectMember
from app.models.prompt import Prompt, Response
from app.models.user import ApiToken, AppSecret, HeavyRequest, LoginAttempt, Role, User, UserSession

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
    "Project",
    "ProjectKind",
    "ProjectMember",
    "Prompt",
    "Response",
    "Role",
    "User",
    "UserSession",
]
