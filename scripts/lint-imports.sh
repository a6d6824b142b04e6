#!/usr/bin/env bash
# Check the import contracts of pyproject.toml ([tool.importlinter]) on the package as it
# installs: the dashboard folder app/ becomes fspace.app only in an installed copy, so the
# graph is built from a throw-away install rather than from the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${BIN:-$root/.venv/bin}
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
# Build from a copy of the files git knows (tracked or not ignored): a stale build/ or
# leftover module in the work tree must not reach the graph.
mkdir "$target/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$target/src" 2>/dev/null || true
if ! "$bin/pip" install --quiet --no-deps --no-build-isolation --no-compile \
    --target "$target/site" "$target/src" >"$target/pip.log" 2>&1; then
  cat "$target/pip.log" >&2
  exit 1
fi
cd "$target/site"
"$bin/lint-imports" "$root/pyproject.toml"
