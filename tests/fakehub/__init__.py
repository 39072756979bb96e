"""A stateful GitHub test double over HTTP (see README.md)."""

from tests.fakehub.server import FakeHub

__all__ = ["FakeHub"]
