"""A stateful GitHub test double over HTTP (see README.md)."""

from fakehub.server import FakeHub

__all__ = ["FakeHub"]
