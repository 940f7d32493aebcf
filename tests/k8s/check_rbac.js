#!/usr/bin/env node
// The coordinator's RBAC in each built overlay grants exactly the API calls the kubernetes
// launcher makes (runtime/coordinator/launchers/kubernetes_client.cc and kubernetes.cc), no
// more and no fewer. When the launcher starts making a new call, add it here and to
// deploy/k8s/base/role.yaml (or clusterrole-nodes.yaml) together.
//
//   node check_rbac.js <built-overlay.yaml>...
'use strict';

const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');

const kExpected = {
  'Role/dtrain-coordinator': [
    'kubeflow.org/mpijobs: create,delete,get,patch,watch',  // Prepare, Launch, Stop, following
    '/pods: list',                                      // pod states and reasons
    '/pods/log: get',                                   // the launcher pod's log
  ],
  'ClusterRole/dtrain-coordinator-nodes': [
    '/nodes: list',  // capacity at start-up
  ],
};

function rules(object) {
  const out = [];
  for (const rule of object.rules || []) {
    for (const group of rule.apiGroups || []) {
      for (const resource of rule.resources || []) {
        out.push(`${group}/${resource}: ${[...(rule.verbs || [])].sort().join(',')}`);
      }
    }
    if (rule.resourceNames || rule.nonResourceURLs) out.push(`unexpected: ${JSON.stringify(rule)}`);
  }
  return out.sort();
}

let failed = 0;
for (const file of process.argv.slice(2)) {
  const objects = yaml.loadAll(fs.readFileSync(file, 'utf8')).filter((d) => d != null);
  for (const [key, want] of Object.entries(kExpected)) {
    const [kind, name] = key.split('/');
    const found = objects.filter((o) => o.kind === kind && o.metadata && o.metadata.name === name);
    const got = found.length === 1 ? rules(found[0]) : [`${found.length} objects named ${key}`];
    const expected = [...want].sort();
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      failed++;
      console.log(`FAIL ${path.basename(file)}: ${key} grants ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
    } else {
      console.log(`ok   ${path.basename(file)}: ${key}`);
    }
  }
  // Every other role-like object would grant more.
  for (const o of objects) {
    if (/^(Cluster)?Role$/.test(o.kind) && !kExpected[`${o.kind}/${o.metadata.name}`]) {
      failed++;
      console.log(`FAIL ${path.basename(file)}: unexpected ${o.kind}/${o.metadata.name}`);
    }
  }
}
process.exitCode = failed === 0 ? 0 : 1;
