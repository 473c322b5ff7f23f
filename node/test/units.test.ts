/** Pure logic: properties files, their security translation, the slicing of batches, the field table. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { BatchLike, DEFAULTS, FIELDS, limitBatches, parseProperties, securityConfig } from '@loomctl/consumer-config';
import { tempDir } from './support';

test('properties are read as Java reads them', () => {
  const text = '# comment\n! also\n  a = 1\nb:2\nc 3\nd=multi\\\n    line\ne=tab\\tand\\u0041\nf\\=g=h\n\nempty=\nlast=\\\n';
  assert.deepEqual(parseProperties(text), { a: '1', b: '2', c: '3', d: 'multiline', e: 'tab\tandA', 'f=g': 'h', empty: '', last: '' });
  assert.throws(() => parseProperties('a=\\u12'), /four hex digits/);
  assert.throws(() => parseProperties('a=\0'), /not a text file/);
});

test('librdkafka security properties become KafkaJS ssl and sasl', () => {
  const folder = tempDir();
  const ca = join(folder, 'ca.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n');
  assert.deepEqual(securityConfig({}), {});
  assert.deepEqual(securityConfig({ 'bootstrap.servers': 'a:1, b:2', 'client.id': 'svc' }), { brokers: ['a:1', 'b:2'], clientId: 'svc' });
  assert.deepEqual(securityConfig({ 'security.protocol': 'ssl' }), { ssl: true });
  assert.deepEqual(
    securityConfig({
      'security.protocol': 'SASL_SSL', 'sasl.mechanisms': 'SCRAM-SHA-512', 'sasl.username': 'u', 'sasl.password': 'p',
      'ssl.ca.location': ca, 'enable.ssl.certificate.verification': 'false',
    }),
    { ssl: { ca: ['-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n'], rejectUnauthorized: false },
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' } },
  );
  assert.deepEqual(securityConfig({ 'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanism': 'PLAIN', 'sasl.username': 'u', 'sasl.password': 'p' }),
    { sasl: { mechanism: 'plain', username: 'u', password: 'p' } });
  assert.throws(() => securityConfig({ 'security.protocol': 'TLS' }), /security.protocol must be/);
  assert.throws(() => securityConfig({ 'ssl.keystore.location': '/k.p12' }), /KafkaJS cannot use/);
  assert.throws(() => securityConfig({ 'security.protocol': 'SSL', 'ssl.ca.location': join(folder, 'missing.pem') }), /ssl.ca.location: cannot read/);
});

function batchOf(count: number, options: { lastOffset?: string } = {}): BatchLike {
  const messages = Array.from({ length: count }, (_, i) => ({ offset: String(100 + i) }));
  return {
    topic: 't', partition: 0, highWatermark: String(100 + count + 1), messages,
    isEmpty: () => count === 0, firstOffset: () => (count ? '100' : null),
    lastOffset: () => options.lastOffset ?? String(100 + count - 1), offsetLag: () => '0', offsetLagLow: () => '0',
  };
}

function payloadOf(batch: BatchLike, stopAfter = Infinity) {
  const log: string[] = [];
  let slices = 0;
  return {
    log,
    payload: {
      batch,
      resolveOffset: (offset: string) => void log.push(`resolve ${offset}`),
      heartbeat: async () => void log.push('heartbeat'),
      commitOffsetsIfNecessary: async () => void log.push('commit'),
      isRunning: () => slices < stopAfter,
      isStale: () => false,
      count: () => (slices += 1),
    },
  };
}

test('a batch is cut into slices of max_poll_records, each resolved and followed by a heartbeat', async () => {
  const batch = batchOf(10, { lastOffset: '110' }); // a control record after the last message
  const { payload, log } = payloadOf(batch);
  const seen: { first: string | null; last: string; size: number; lag: string }[] = [];
  const handler = limitBatches(async ({ batch: slice }: typeof payload) => {
    seen.push({ first: slice.firstOffset(), last: slice.lastOffset(), size: slice.messages.length, lag: slice.offsetLag() });
    assert.equal(slice.topic, 't');
  }, { limit: async () => 4, autoResolve: true, autoCommit: true });
  await handler(payload);
  assert.deepEqual(seen, [
    { first: '100', last: '103', size: 4, lag: '7' },
    { first: '104', last: '107', size: 4, lag: '3' },
    { first: '108', last: '110', size: 2, lag: '0' },
  ]);
  assert.deepEqual(log, ['resolve 103', 'heartbeat', 'commit', 'resolve 107', 'heartbeat', 'commit', 'resolve 109', 'heartbeat']);
});

test('a stopped consumer processes no further slice and resolves nothing it did not hand out', async () => {
  const batch = batchOf(10);
  const { payload, log } = payloadOf(batch, 1);
  const sizes: number[] = [];
  await limitBatches(async (p: typeof payload) => void (sizes.push(p.batch.messages.length), p.count()), {
    limit: async () => 3, autoResolve: true, autoCommit: false,
  })(payload);
  assert.deepEqual(sizes, [3]);
  assert.deepEqual(log, ['resolve 102', 'heartbeat']);
});

test('a failing slice stops the batch with the offsets of the slices before it resolved', async () => {
  const { payload, log } = payloadOf(batchOf(9));
  let calls = 0;
  const handler = limitBatches(async () => {
    if (++calls === 2) throw new Error('boom');
  }, { limit: async () => 3, autoResolve: true, autoCommit: true });
  await assert.rejects(handler(payload), /boom/);
  assert.deepEqual(log, ['resolve 102', 'heartbeat', 'commit']);
});

test('without auto-resolve the application resolves; an empty batch passes through once', async () => {
  const { payload, log } = payloadOf(batchOf(5));
  await limitBatches(async () => undefined, { limit: async () => 2, autoResolve: false, autoCommit: false })(payload);
  assert.deepEqual(log, ['heartbeat', 'heartbeat', 'heartbeat']);
  const empty = payloadOf(batchOf(0, { lastOffset: '99' }));
  let calls = 0;
  await limitBatches(async () => void (calls += 1), { limit: async () => 2, autoResolve: true, autoCommit: true })(empty.payload);
  assert.equal(calls, 1);
  assert.deepEqual(empty.log, ['resolve 99']);
});

test('the field table: every field has a default within its range, mapped or explained', () => {
  assert.equal(FIELDS.length, Object.keys(DEFAULTS).length);
  for (const field of FIELDS) {
    if (field.kind === 'int') assert.ok(field.minimum! <= (field.default as number) && (field.default as number) <= field.maximum!, field.name);
    if (field.choices) assert.ok(field.choices.includes(field.default as string), field.name);
    if (field.kafkajs?.values) {
      const expected = field.choices ?? ['true', 'false'];
      assert.deepEqual(Object.keys(field.kafkajs.values).sort(), [...expected].sort(), field.name);
    }
  }
  assert.equal(FIELDS.find((f) => f.name === 'max_poll_records')?.kafkajs, null, 'enforced by the package, not an option');
});
