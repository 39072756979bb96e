"""The spec file format: model, loading, validation and its JSON Schema.

Pure: knows nothing of GitHub or databases, and does no I/O beyond reading
the text it is given.
"""
