#!/usr/bin/env bash
# Installs the npm packages of the offline Kubernetes checks (package.json, pinned by
# package-lock.json: ajv, js-yaml, kubernetes-models) into tests/k8s/node_modules.
# Idempotent: when node_modules matches the lock file it touches no network; otherwise npm ci
# prefers its own cache, so a machine that fetched them once installs them again offline.
# Exit status 77 (ctest's SKIP) with the reason on stderr when npm is missing or cannot fetch.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.dtrain-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
if ! command -v npm > /dev/null; then
  echo "SKIP: npm is not installed (deploy/install-deps.sh installs it); the Kubernetes checks need its packages" >&2
  exit 77
fi
if ! npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2; then
  echo "SKIP: npm ci could not install tests/k8s/package-lock.json (no registry and no npm cache?)" >&2
  exit 77
fi
echo "$want" > "$stamp"
