"""Test fixtures: a real database (temporary SQLite, or PostgreSQL from TEST_DATABASE_URL), migrated
once by Alembic, emptied after every test. Tests go through the real app, commits included."""

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Settings are read from the environment once (get_settings is cached): set it before anything imports the app.
_tmp = Path(tempfile.mkdtemp(prefix="preflab-tests-"))
os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_tmp}/test.db"
os.environ["ENVIRONMENT"] = "test"
os.environ["SECRET_KEY"] = "test-secret-key-at-least-32-characters-long"
os.environ["WARM_UP"] = "false"  # tests/test_startup.py runs the warm-up's steps itself (app/config.py says why)

import pytest  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app import demo, migrate  # noqa: E402
from app.config import get_settings  # noqa: E402
from app.db import Database  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import Project, Role, User  # noqa: E402
from app.projects import service as projects_service  # noqa: E402
from app.projects.schemas import ProjectCreate  # noqa: E402
from app.users import security  # noqa: E402
from app.users import service as users_service  # noqa: E402
from app.users.schemas import UserCreate  # noqa: E402

# Cheap hashing keeps the suite fast; production uses argon2's defaults.
security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def database() -> Iterator[Database]:
    database = Database(get_settings())
    if database.engine.dialect.name == "postgresql":  # start from an empty schema, like a fresh install
        with database.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture(autouse=True)
def _empty_database(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "database" in request.fixturenames:
        database = request.getfixturevalue("database")
        with database.sessionmaker() as session, session.begin():
            demo.wipe(session)


@pytest.fixture
def db(database: Database) -> Iterator[Session]:
    """A session for arranging and checking data. Call db.commit() before the app should see what it
    wrote, and db.rollback() before reading what the app wrote since (it ends the old snapshot). It uses
    the deferred engine, so on SQLite it never holds the write lock the app needs."""
    with database.read_sessionmaker() as session:
        yield session


@pytest.fixture
def app(database: Database):
    app = create_app(get_settings())
    app.state.database.dispose()
    app.state.database = database  # share the migrated engine
    return app


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def make_user(db: Session):
    counter = iter(range(1, 10_000))

    def make(role: Role | str = Role.annotator, email: str | None = None, password: str = PASSWORD) -> User:
        email = email or f"{role}{next(counter)}@example.org"
        db.commit()  # end any read snapshot first: on SQLite a stale one cannot be upgraded to a write
        user = users_service.create_user(session=db, data=UserCreate(email=email, role=role, password=password))
        db.commit()
        return user

    return make


@pytest.fixture
def seed(db: Session, make_user, make_project):
    """Imports and labels in bulk (tests/seeding.py)."""
    from tests.seeding import Seeder

    return Seeder(db, make_user, make_project)


@pytest.fixture
def make_project(db: Session):
    counter = iter(range(1, 10_000))

    def make(members: list[User] = (), **fields) -> Project:
        data = ProjectCreate(**({"name": f"project {next(counter)}"} | fields))
        db.commit()  # see make_user
        project = projects_service.create_project(session=db, data=data, created_by=None)
        for member in members:
            projects_service.add_member(session=db, project=project, user=member)
        db.commit()
        return project

    return make


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


def login(client: TestClient, user: User, password: str = PASSWORD) -> TestClient:
    """Log the browser-like client in; later cookie-authenticated posts send the CSRF header."""
    page = client.get("/login")
    token = csrf_from(page.text)
    response = client.post(
        "/login", data={"email": user.email, "password": password, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    client.headers["X-CSRF-Token"] = csrf_from(client.get("/").text)  # login rotates the token
    return client


@pytest.fixture
def login_as(app):
    """A fresh logged-in TestClient per user (so several users can act in one test)."""
    clients: list[TestClient] = []

    def make(user: User) -> TestClient:
        client = TestClient(app)
        clients.append(client)
        return login(client, user)

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def bearer(db: Session):
    """Authorization headers with a fresh API token for a user."""

    def make(user: User) -> dict[str, str]:
        db.commit()  # see make_user
        _, token = users_service.create_api_token(session=db, user=user, name="test")
        db.commit()
        return {"Authorization": f"Bearer {token}"}

    return make
