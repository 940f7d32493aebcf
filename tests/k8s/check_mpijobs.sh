#!/usr/bin/env bash
# Every MPIJob the Kubernetes backend generates validates against the MPI Operator's CRD
# (kubeflow.org_mpijobs.yaml, openAPIV3Schema) and Kubernetes' PodTemplateSpec schema.
#
#   tests/k8s/check_mpijobs.sh <write_mpijob_samples binary>
# Exit 77 (SKIP) with the reason when node or the npm packages are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
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
"$1" "$out"
count=$(find "$out" -name '*.json' | wc -l)
if ((count < 6)); then
  echo "FAIL: expected at least 6 generated MPIJobs, got $count"
  exit 1
fi
# The validator must refuse what the API server would: an unknown field and a wrong type.
mkdir "$out/broken"
node -e '
const fs = require("fs");
const job = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
job.spec.runPolicy.cleanupPolicy = "All";
job.spec.slotsPerWorker = "2";
fs.writeFileSync(process.argv[2], JSON.stringify(job));
' "$out/cpu-one-worker.json" "$out/broken/unknown-field-and-string-slots.json"
if broken=$(node "$here/validate_mpijobs.js" "$here/kubeflow.org_mpijobs.yaml" "$out"/broken/*.json); then
  echo "FAIL: the validator accepted a broken MPIJob:"; echo "$broken"
  exit 1
fi
if ! grep -q "cleanupPolicy" <<<"$broken" || ! grep -q "slotsPerWorker must be integer" <<<"$broken"; then
  echo "FAIL: the validator refused the broken MPIJob for other reasons:"; echo "$broken"
  exit 1
fi
node "$here/validate_mpijobs.js" "$here/kubeflow.org_mpijobs.yaml" "$out"/*.json
