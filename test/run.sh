#!/usr/bin/env bash
# The test command (`npm test`): installs what is missing, brings the local
# stack up (reusing what runs), typechecks, lints, then runs every test file
# with node's test runner, whose summary is the last thing printed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started=$SECONDS
scripts/ensure-node-deps
./ferry stack up
echo "ferry test: typecheck"
node_modules/.bin/tsc -p tsconfig.json
echo "ferry test: lint"
node_modules/.bin/eslint --max-warnings=0 .
echo "ferry test: setup took $((SECONDS - started)) s; running tests"
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
shopt -s nullglob
files=(test/*.test.ts)
exec node --import "file://$root/node_modules/tsx/dist/loader.mjs" \
  --test --test-reporter=spec --test-timeout=1200000 "${files[@]}"
