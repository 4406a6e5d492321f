"""Dependencies every route may share: the app's settings, and path ids checked before any route runs."""

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.errors import NotFound
from app.models.base import MAX_ID


async def get_app_settings(request: Request) -> Settings:  # async: no I/O, so no thread-pool hop
    """The settings of the app serving this request. Each app carries its own (tests build apps with other
    limits), so inside a request this, not `get_settings()`, is the source of truth."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def path_ids_in_range(request: Request) -> None:  # async: no I/O, so no thread-pool hop
    """A path id outside the INTEGER range (either sign) is a 404 like any unknown id, not a driver overflow (500)."""
    for name, value in request.path_params.items():
        if not (name.endswith("_id") and isinstance(value, str)):
            continue
        try:
            number = int(value)
        except ValueError:
            continue  # not a number: FastAPI's validation answers 422
        if not -MAX_ID - 1 <= number <= MAX_ID:
            raise NotFound(f"No {name.removesuffix('_id').replace('_', ' ')} with id {value}")
