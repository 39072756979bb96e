from __future__ import annotations

import pytest

from bot import handlers
from bot.settings import Settings, load_settings
from tests.support import MOCK_API


@pytest.fixture
def handler_settings(db: str) -> Settings:
    """Settings for handlers talking to `responses` mocks of GitHub."""
    handlers.load()
    return load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_TOKEN": "t",
            "GITHUB_API_URL": MOCK_API,
            "GITHUB_WRITE_INTERVAL": "0",
        }
    )
