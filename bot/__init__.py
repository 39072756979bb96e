"""specbridge: the GitHub App that bridges spec files and tracked work."""

__version__ = "0.1.0"
