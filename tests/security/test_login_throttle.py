"""Login throttling that cannot lock out the owner: limits per (address, account) and per address, only a
slow-down per account, the same work for unknown emails, no way past the limit by racing it, and
forwarded addresses believed only from the configured proxy."""

import threading
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.models import Role
from app.users import security, throttle
from tests.conftest import PASSWORD, csrf_from

ROOT = Path(__file__).resolve().parents[2]


def at(app, address: str):
    """The app as reached from `address` (the ASGI scope's client, as uvicorn sets it)."""

    async def asgi(scope, receive, send):
        if scope["type"] == "http":
            scope = dict(scope, client=(address, 40000))
        await app(scope, receive, send)

    return asgi


def attempt(client: TestClient, email: str, password: str, **headers):
    token = csrf_from(client.get("/login", headers=headers).text)
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}, headers=headers, follow_redirects=False
    )


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    waited: list[float] = []

    async def pause(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(throttle, "pause", pause)
    return waited


def test_the_owner_from_another_address_is_not_locked_out(app, make_user, pauses):
    admin = make_user(Role.admin)
    with TestClient(at(app, "198.51.100.66")) as attacker, TestClient(at(app, "203.0.113.5")) as owner:
        for _ in range(throttle.MAX_PAIR_FAILURES):
            assert attempt(attacker, admin.email, "guess").status_code == 400
        assert attempt(attacker, admin.email, PASSWORD).status_code == 429  # that address, that account: blocked
        assert attempt(owner, admin.email, PASSWORD).status_code == 303
        assert owner.get("/api/me").json()["email"] == admin.email


def test_the_account_is_slowed_down_not_refused_when_guesses_come_from_many_addresses(app, make_user, pauses):
    user = make_user()
    for i in range(throttle.SLOW_AFTER + 3):
        with TestClient(at(app, f"198.51.100.{i}")) as guesser:
            assert attempt(guesser, user.email, "guess").status_code == 400
    assert pauses == [0.25, 0.5, 1.0]  # from the 6th failure on, each try waits longer
    with TestClient(at(app, "203.0.113.5")) as owner:
        assert attempt(owner, user.email, PASSWORD).status_code == 303
    assert pauses[-1] == 2.0
    pauses.clear()  # the owner's success cleared the account's failures
    for i in range(throttle.SLOW_AFTER + 6):
        with TestClient(at(app, f"192.0.2.{i}")) as guesser:
            assert attempt(guesser, user.email, "guess").status_code == 400
    assert pauses[-1] == throttle.MAX_DELAY  # capped


def test_unknown_emails_cost_a_password_check_too(client, make_user, monkeypatch):
    make_user(email="known@example.org")
    checked: list[str] = []

    class Counting(type(security._hasher)):
        def verify(self, hash_, password) -> bool:
            checked.append(password)
            return super().verify(hash_, password)

    cheap = security._hasher
    monkeypatch.setattr(
        security, "_hasher", Counting(time_cost=cheap.time_cost, memory_cost=cheap.memory_cost, parallelism=cheap.parallelism)
    )
    assert attempt(client, "known@example.org", "guess-1").status_code == 400
    assert attempt(client, "unknown@example.org", "guess-2").status_code == 400
    assert checked == ["guess-1", "guess-2"]


def test_concurrent_guesses_cannot_exceed_the_limit(app, make_user):
    user = make_user()
    statuses: list[int] = []
    with TestClient(app) as client:
        token = csrf_from(client.get("/login").text)
        barrier = threading.Barrier(20)

        def guess() -> None:
            barrier.wait()
            response = client.post(
                "/login", data={"email": user.email, "password": "guess", "csrf_token": token}, follow_redirects=False
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=guess) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(statuses) == 20
    assert statuses.count(400) == throttle.MAX_PAIR_FAILURES, statuses
    assert statuses.count(429) == 20 - throttle.MAX_PAIR_FAILURES


def test_rotating_x_forwarded_for_through_the_compose_proxy_gets_nowhere(app, make_user):
    """As deployed by docker-compose.yml: uvicorn trusts X-Forwarded-For from FORWARDED_ALLOW_IPS only."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    trusted = compose["services"]["app"]["environment"]["FORWARDED_ALLOW_IPS"]
    proxy_address = compose["services"]["proxy"]["networks"]["backend"]["ipv4_address"]
    user = make_user()
    behind_proxy = ProxyHeadersMiddleware(app, trusted_hosts=trusted)
    refused = 0
    with TestClient(at(behind_proxy, proxy_address)) as client:
        for i in range(12):
            # What the client sent, then the address the proxy saw (nginx's $proxy_add_x_forwarded_for).
            response = attempt(client, user.email, "guess", **{"X-Forwarded-For": f"10.9.8.{i}, 198.51.100.7"})
            refused += response.status_code == 429
    assert refused == 12 - throttle.MAX_PAIR_FAILURES
    # A client reaching the app directly cannot pose as anyone either.
    with TestClient(at(behind_proxy, "198.51.100.7")) as direct:
        spoofed = attempt(direct, user.email, PASSWORD, **{"X-Forwarded-For": "10.1.1.1"})
        assert spoofed.status_code == 429
