from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakehub import FakeHub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    """The double in this process, for a module's tests; its webhooks go nowhere."""
    hub = FakeHub(None, "", tmp_path_factory.mktemp("hub"))
    hub.start()
    yield hub
    hub.stop()
