"""Where GitHub's published descriptions are: REST (OpenAPI), GraphQL schema,
webhook payload examples and schemas.

`SPECBRIDGE_GITHUB_FIXTURES` names a directory laid out as
`../shared/github-fixtures/` (webhooks/, webhook-schemas/, openapi/, graphql/);
without it, the copy beside the repository is used.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def github_fixtures() -> Path:
    configured = os.environ.get("SPECBRIDGE_GITHUB_FIXTURES")
    if configured:
        return Path(configured)
    return REPO_ROOT.parent / "shared" / "github-fixtures"


FIXTURES = github_fixtures()
