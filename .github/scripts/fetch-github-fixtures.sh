#!/usr/bin/env bash
# Lay out ../shared/github-fixtures/ as the tests expect it, from the same
# pinned sources the shared copy was made from (see its SOURCES.md):
# octokit/webhooks payload examples and schemas, @octokit/openapi's REST
# description, octokit/graphql-schema's schema.
set -euo pipefail
dest="${1:-../shared/github-fixtures}"
work="$(mktemp -d)"
mkdir -p "$dest"/{webhooks,webhook-schemas,openapi,graphql}

git clone --quiet --filter=blob:none https://github.com/octokit/webhooks "$work/webhooks"
git -C "$work/webhooks" checkout --quiet 3a58428aa5c399cf5aa12c8663aea1fb1f515254
events="check_run check_suite installation installation_repositories issue_comment issues ping projects_v2_item pull_request push"
for event in $events; do
  cp -r "$work/webhooks/payload-examples/api.github.com/$event" "$dest/webhooks/"
  cp -r "$work/webhooks/payload-schemas/api.github.com/$event" "$dest/webhook-schemas/"
done
cp -r "$work/webhooks/payload-schemas/api.github.com/common" "$dest/webhook-schemas/"

(cd "$work" && npm pack --silent @octokit/openapi@23.0.2 >/dev/null && tar -xzf octokit-openapi-23.0.2.tgz)
cp "$work/package/generated/api.github.com.json" "$dest/openapi/"

git clone --quiet --filter=blob:none https://github.com/octokit/graphql-schema "$work/graphql"
git -C "$work/graphql" checkout --quiet 82ff2d4780080e6929ebb95608cefa22dfa05ac7
cp "$work/graphql/schema.graphql" "$dest/graphql/"
