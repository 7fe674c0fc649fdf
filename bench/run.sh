#!/usr/bin/env bash
# Runs one benchmark: bench/run.sh bulk [options]. Installs npm packages on first
# use; each benchmark starts the local stack itself.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
name="${1:?usage: bench/run.sh NAME [options], e.g. bench/run.sh bulk --rows 1000000}"
shift
"$root/scripts/ensure-node-deps"
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED="${AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED:-true}"
cd "$root"
exec node --import "file://$root/node_modules/tsx/dist/loader.mjs" "$root/bench/$name.ts" "$@"
