"""Export fixtures: `datasets` kept offline and on a cache of each test's own. Projects and labels come from the
`seed` fixture (tests/seeding.py)."""

import os

import pytest

# `datasets` must never reach for the Hub in tests (offline machine, CI).
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _fresh_datasets_cache(tmp_path, monkeypatch):
    """Each test loads with its own `datasets` cache: a cache shared across tests (same folder names,
    recycled pytest tmp paths) could hand back another test's rows."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
