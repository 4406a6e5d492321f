"""What a report served from the cache (app/reports/cache.py) adds to its own fields. Pydantic only: report
schemas import it without loading the database layer."""

from datetime import datetime

from pydantic import BaseModel


class CacheInfo(BaseModel):
    computed_at: datetime | None = None  # when this report was computed (None: not served from the cache)
    stale: bool = False  # the data changed since; a newer report is being computed by another request
