#!/usr/bin/env bash
# deploy/k8s: `kubectl kustomize` builds every overlay, every object it yields validates against
# the Kubernetes schemas (npm kubernetes-models), and the coordinator's Role grants exactly the
# calls the kubernetes launcher makes (runtime/coordinator/launchers/kubernetes_client.cc).
#
#   tests/k8s/check_manifests.sh
# Exit 77 (SKIP) with the reason when kubectl, node or the npm packages are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if ! command -v kubectl > /dev/null; then
  echo "SKIP: kubectl is not installed (deploy/install-deps.sh installs kubernetes-client)"
  exit 77
fi
if ! command -v node > /dev/null; then
  echo "SKIP: node is not installed (deploy/install-deps.sh installs nodejs)"
  exit 77
fi
if [[ ! -f $here/node_modules/.dtrain-lock-sha256 ]]; then
  echo "SKIP: tests/k8s/node_modules is not installed (tests/k8s/install-node-tools.sh failed; see its output)"
  exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
overlays=()
for dir in "$root"/deploy/k8s/overlays/*/; do overlays+=("$(basename "$dir")"); done
if ((${#overlays[@]} < 2)); then
  echo "FAIL: expected the cpu and gpu overlays at least, found: ${overlays[*]}"
  exit 1
fi
for overlay in "${overlays[@]}"; do
  if ! kubectl kustomize "$root/deploy/k8s/overlays/$overlay" > "$out/$overlay.yaml" 2> "$out/$overlay.err"; then
    echo "FAIL: kubectl kustomize deploy/k8s/overlays/$overlay:"
    cat "$out/$overlay.err"
    exit 1
  fi
  echo "built overlays/$overlay ($(grep -c '^kind:' "$out/$overlay.yaml") objects)"
done
node "$here/validate_manifests.js" "$out"/*.yaml
# The Role, and the ClusterRole for nodes: exactly what the launcher uses, nothing more.
node "$here/check_rbac.js" "$out"/*.yaml
