#!/usr/bin/env node
// Validates MPIJob JSON files against the openAPIV3Schema of the MPI Operator's CRD, as strictly
// as an API server with strict field validation (`kubectl apply --validate=strict`) would: an
// unknown field is an error, not silently pruned. The pod templates are validated a second time
// against Kubernetes' own PodTemplateSpec schema (npm kubernetes-models), and metadata.name and
// the labels against the API server's rules for names and labels.
//
//   node validate_mpijobs.js <crd.yaml> <mpijob.json>...
// Prints one line per file; exit status 1 when any file is invalid.
'use strict';

const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const Ajv = require('ajv');
const { PodTemplateSpec } = require('kubernetes-models/v1/PodTemplateSpec');

// Structural schemas prune unknown fields; strict validation rejects them. Mirror that by
// closing every object that lists its properties and neither maps arbitrary keys nor keeps
// unknown fields.
function closeObjects(schema) {
  if (Array.isArray(schema)) return schema.forEach(closeObjects);
  if (!schema || typeof schema !== 'object') return;
  if (schema.type === 'object' && schema.properties && schema.additionalProperties === undefined &&
      !schema['x-kubernetes-preserve-unknown-fields']) {
    schema.additionalProperties = false;
  }
  for (const value of Object.values(schema)) closeObjects(value);
}

function versionSchema(crdPath, version) {
  const crd = yaml.load(fs.readFileSync(crdPath, 'utf8'));
  const served = crd.spec.versions.find((v) => v.name === version);
  if (!served) throw new Error(`${crdPath}: no version ${version}`);
  const schema = JSON.parse(JSON.stringify(served.schema.openAPIV3Schema));
  closeObjects(schema);
  return schema;
}

const kDns1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const kLabelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const kLabelKey = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function metadataErrors(where, meta) {
  const errors = [];
  if (!meta || typeof meta !== 'object') return [`${where}: no metadata`];
  if (where === 'MPIJob') {
    if (typeof meta.name !== 'string' || meta.name.length > 63 || !kDns1035.test(meta.name)) {
      errors.push(`${where}.metadata.name ${JSON.stringify(meta.name)} is not a DNS-1035 label`);
    }
    if (typeof meta.namespace !== 'string' || !kDns1035.test(meta.namespace)) {
      errors.push(`${where}.metadata.namespace ${JSON.stringify(meta.namespace)} is not valid`);
    }
  }
  for (const [key, value] of Object.entries(meta.labels || {})) {
    if (!kLabelKey.test(key) || key.split('/').pop().length > 63) {
      errors.push(`${where}.metadata.labels: bad key ${JSON.stringify(key)}`);
    }
    if (typeof value !== 'string' || value.length > 63 || !kLabelValue.test(value)) {
      errors.push(`${where}.metadata.labels.${key}: bad value ${JSON.stringify(value)}`);
    }
  }
  return errors;
}

function main(argv) {
  if (argv.length < 2) {
    console.error('usage: validate_mpijobs.js <crd.yaml> <mpijob.json>...');
    return 2;
  }
  const ajv = new Ajv({ strict: false, allErrors: true });
  // The only formats the CRD uses.
  ajv.addFormat('int32', { type: 'number', validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n) => Number.isSafeInteger(n) });
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  const validate = ajv.compile(versionSchema(argv[0], 'v2beta1'));
  let failed = 0;
  for (const file of argv.slice(1)) {
    const errors = [];
    let job;
    try {
      job = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      errors.push(`cannot read: ${e.message}`);
    }
    if (job) {
      if (job.apiVersion !== 'kubeflow.org/v2beta1' || job.kind !== 'MPIJob') {
        errors.push(`apiVersion/kind ${job.apiVersion}/${job.kind}, expected kubeflow.org/v2beta1/MPIJob`);
      }
      if (!validate(job)) {
        for (const e of validate.errors) errors.push(`CRD schema: ${e.instancePath || '/'} ${e.message}` +
                                                   (e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''));
      }
      errors.push(...metadataErrors('MPIJob', job.metadata));
      const replicas = (job.spec && job.spec.mpiReplicaSpecs) || {};
      for (const [role, replica] of Object.entries(replicas)) {
        try {
          new PodTemplateSpec(replica.template).validate();
        } catch (e) {
          errors.push(`${role} template (kubernetes-models PodTemplateSpec): ${e.message}`);
        }
        errors.push(...metadataErrors(`${role} template`, (replica.template || {}).metadata));
      }
    }
    const name = path.basename(file);
    if (errors.length === 0) {
      console.log(`ok   ${name}`);
    } else {
      failed++;
      console.log(`FAIL ${name}`);
      for (const e of errors) console.log(`     ${e}`);
    }
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
