import pytest

from app.annotation import service


@pytest.fixture(autouse=True)
def _fresh_claim_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test builds the claim statements anew, as a fresh process does. The mutation run (TESTING.md) forks
    its test processes from one that already ran the tests; without this they would reuse the statements built
    there and never run a mutant of `_claim`."""
    monkeypatch.setattr(service, "_CLAIMS", {})
