#!/usr/bin/env node
// Validates Kubernetes manifests (multi-document YAML files, e.g. `kubectl kustomize` output)
// against the Kubernetes API schemas of npm kubernetes-models, offline. Every object must be of a
// kind the models know; unknown fields are errors (the models' schemas forbid them).
//
//   node validate_manifests.js <file.yaml>...
// Prints one line per object; exit status 1 when any is invalid.
'use strict';

const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');

// "apps/v1" + "Deployment" -> kubernetes-models/apps/v1/Deployment; core "v1" has no group.
function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !/^[A-Za-z]+$/.test(kind)) {
    throw new Error(`apiVersion ${JSON.stringify(apiVersion)} kind ${JSON.stringify(kind)}`);
  }
  const modulePath = `kubernetes-models/${apiVersion}/${kind}`;
  try {
    return require(modulePath)[kind];
  } catch (e) {
    throw new Error(`no Kubernetes schema for ${apiVersion} ${kind} (${modulePath})`);
  }
}

function main(files) {
  if (files.length === 0) {
    console.error('usage: validate_manifests.js <file.yaml>...');
    return 2;
  }
  let failed = 0;
  let count = 0;
  for (const file of files) {
    const docs = yaml.loadAll(fs.readFileSync(file, 'utf8')).filter((d) => d != null);
    for (const doc of docs) {
      count++;
      const name = `${path.basename(file)}: ${doc.kind}/${(doc.metadata || {}).name}`;
      try {
        const Model = modelFor(doc.apiVersion, doc.kind);
        new Model(doc).validate();
        console.log(`ok   ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${e.message}`);
      }
    }
  }
  if (count === 0) {
    console.log('FAIL: no objects');
    return 1;
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
