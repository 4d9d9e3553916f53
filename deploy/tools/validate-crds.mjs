// Validates Strimzi and CloudNativePG resources offline against the operators' own schemas
// (the @kubernetes-models packages are generated from the Strimzi CRDs and CloudNativePG's Go
// API types).
//
//   node deploy/tools/validate-crds.mjs < objects.json
//
// Reads a JSON array of Kubernetes objects; prints a JSON array with, for each object, the
// schema's errors and its unknown fields. The models' validate() does not reject a field the
// schema does not declare (an API server with strict field validation refuses it; without,
// it is silently dropped), so this script also finds those: it validates once more through
// a Proxy that records which properties the compiled validator reads. The validator reads
// every property its schema declares (present or not) and every key of a map whose values
// it checks; a key it never read, in an object whose schema declares properties, is unknown.
// An object whose schema declares none (free-form, such as Kafka's `config`) is not judged.

import * as cnpg from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1";
import * as strimzi from "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1";

const MODELS = {
  "kafka.strimzi.io/v1": strimzi,
  "postgresql.cnpg.io/v1": cnpg,
};

// A deep copy of `value` whose objects record, in `reads`, the keys read by name.
function recording(value, path, reads) {
  if (value === null || typeof value !== "object") {
    return value;
  }
  const named = reads.get(path) ?? new Set();
  reads.set(path, named);
  const target = Array.isArray(value)
    ? value.map((item, index) => recording(item, `${path}/${index}`, reads))
    : Object.fromEntries(
        Object.entries(value).map(([key, item]) => [key, recording(item, `${path}/${key}`, reads)]),
      );
  const note = (key) => {
    if (typeof key === "string") {
      named.add(key);
    }
  };
  return new Proxy(target, {
    get(object, key, receiver) {
      note(key);
      return Reflect.get(object, key, receiver);
    },
    has(object, key) {
      note(key);
      return Reflect.has(object, key);
    },
    getOwnPropertyDescriptor(object, key) {
      note(key);
      return Reflect.getOwnPropertyDescriptor(object, key);
    },
  });
}

function unknownFields(value, path, reads, found) {
  if (value === null || typeof value !== "object") {
    return found;
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => unknownFields(item, `${path}/${index}`, reads, found));
    return found;
  }
  const named = reads.get(path) ?? new Set();
  for (const [key, item] of Object.entries(value)) {
    if (named.size > 0 && !named.has(key)) {
      found.push(`${path}/${key}`);
    } else {
      unknownFields(item, `${path}/${key}`, reads, found);
    }
  }
  return found;
}

function check(object) {
  const result = {
    apiVersion: object.apiVersion,
    kind: object.kind,
    name: object.metadata?.name,
    errors: [],
    unknownFields: [],
  };
  const Model = MODELS[object.apiVersion]?.[object.kind];
  if (Model === undefined || Model.kind !== object.kind) {
    result.errors.push(`no model of ${object.kind} in ${object.apiVersion}`);
    return result;
  }
  try {
    new Model(object).validate();
  } catch (error) {
    result.errors.push(error.message);
    return result;
  }
  const reads = new Map();
  Model.prototype.validate.call(recording(object, "", reads));
  result.unknownFields = unknownFields(object, "", reads, []);
  return result;
}

const chunks = [];
for await (const chunk of process.stdin) {
  chunks.push(chunk);
}
const objects = JSON.parse(Buffer.concat(chunks).toString("utf8"));
process.stdout.write(`${JSON.stringify(objects.map(check), null, 1)}\n`);
