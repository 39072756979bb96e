"""Agents: the operator's profiles, and one run of a Task in a workspace."""
