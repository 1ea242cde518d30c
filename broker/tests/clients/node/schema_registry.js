// The schema registry through @kafkajs/confluent-schema-registry, with kafkajs carrying the
// encoded records through the broker: Avro, JSON Schema and Protobuf schemas registered,
// records encoded, produced, consumed and decoded, a compatible evolution accepted and an
// incompatible one refused. Usage: node schema_registry.js REGISTRY_URL BOOTSTRAP TOPIC
// Prints one JSON line of results; exits 1 on the first failed step.
'use strict';

const assert = require('node:assert/strict');
const { Kafka, Partitioners, logLevel } = require('kafkajs');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');

const [registryUrl, bootstrap, topic] = process.argv.slice(2);

const avroV1 = {
  type: 'record', name: 'User', namespace: 'test',
  fields: [{ name: 'id', type: 'int' }, { name: 'name', type: 'string' }],
};
const avroV2 = { ...avroV1, fields: [...avroV1.fields, { name: 'email', type: 'string', default: '' }] };
const avroBad = { ...avroV1, fields: [...avroV1.fields, { name: 'age', type: 'int' }] };
const jsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#', title: 'Order', type: 'object',
  properties: { id: { type: 'integer' }, item: { type: 'string' } }, required: ['id'],
};
const protoSchema = `syntax = "proto3";
package test;
message Reading {
  string sensor = 1;
  double value = 2;
}`;

async function roundTrip(kafka, values) {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: values.map((value) => ({ value })) });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: `node-sr-${topic}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${got.length} of ${values.length} records in 60 s`)), 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value);
        if (got.length === values.length) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  return got;
}

async function main() {
  const registry = new SchemaRegistry({ host: registryUrl });
  const kafka = new Kafka({ clientId: 'node-schema-registry', brokers: bootstrap.split(','), logLevel: logLevel.WARN });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();

  // Avro: register, encode, through the broker, decode.
  const subject = `${topic}-value`;
  const { id: avroId } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(avroV1) }, { subject });
  const users = [{ id: 1, name: 'ada' }, { id: 2, name: 'grace' }];
  const encoded = await Promise.all(users.map((u) => registry.encode(avroId, u)));
  encoded.forEach((buf) => assert.equal(buf.readInt32BE(1), avroId, 'the wire format carries the schema id'));

  // JSON Schema and Protobuf under subjects of their own.
  const { id: jsonId } = await registry.register({ type: SchemaType.JSON, schema: JSON.stringify(jsonSchema) },
    { subject: `${topic}-order` });
  const { id: protoId } = await registry.register({ type: SchemaType.PROTOBUF, schema: protoSchema },
    { subject: `${topic}-reading` });
  const order = { id: 7, item: 'tea' };
  const reading = { sensor: 's1', value: 21.5 };
  const more = [await registry.encode(jsonId, order), await registry.encode(protoId, reading)];

  const consumed = await roundTrip(kafka, [...encoded, ...more]);
  const decoded = await Promise.all(consumed.slice(0, 2).map((b) => registry.decode(b)));
  assert.deepEqual(decoded.map((u) => ({ ...u })), users);
  assert.deepEqual({ ...(await registry.decode(consumed[2])) }, order);
  assert.deepEqual({ ...(await registry.decode(consumed[3])) }, reading);

  // The id is the registry's: fetched back by id and latest, and the same for a re-registration.
  assert.equal(await registry.getLatestSchemaId(subject), avroId);
  assert.equal((await registry.getSchema(avroId)).name, 'test.User', 'the schema fetched back by id');
  const again = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(avroV1) }, { subject });
  assert.equal(again.id, avroId);

  // Evolution under the default BACKWARD level.
  const { id: v2Id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(avroV2) }, { subject });
  assert.notEqual(v2Id, avroId);
  assert.equal(await registry.getLatestSchemaId(subject), v2Id);
  const upgraded = await registry.decode(await registry.encode(v2Id, { id: 3, name: 'lin', email: 'l@x' }));
  assert.deepEqual({ ...upgraded }, { id: 3, name: 'lin', email: 'l@x' });
  let refused = null;
  try {
    await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(avroBad) }, { subject });
  } catch (e) {
    refused = e;
  }
  assert.ok(refused, 'an incompatible schema must be refused');
  assert.equal(refused.status, 409, `refusal status: ${refused.status} ${refused.message}`);

  console.log(JSON.stringify({ avroId, jsonId, protoId, v2Id, consumed: consumed.length, refused: refused.status }));
}

main().then(() => process.exit(0), (e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
