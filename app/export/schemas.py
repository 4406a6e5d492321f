"""What the export's preview answers (GET /api/projects/{id}/export/preview)."""

from typing import Any

from pydantic import BaseModel


class FilterStep(BaseModel):
    filter: str  # the option's name
    value: Any  # as asked
    removed: int  # rows (pairs, for the pair formats) this filter takes out of what the ones before it left
    remaining: int


class ExportPreview(BaseModel):
    unit: str  # "pairs" for the pair formats, else "rows"
    before_filters: int  # rows with every filter off
    steps: list[FilterStep]  # the filters asked for, in the order the export applies them
    rows: int  # what the download will hold (== the last step's remaining)
    prompts: int  # prompts giving at least one row
