/**
 * The guide's UPDATE reaches a Node service that keeps running: real PostgreSQL and Kafka, a consumer the loader
 * made, consuming while the config changes under it.
 *
 * - max_poll_records (live) shows in the next batches, the same client on;
 * - fetch_max_bytes (recreate) takes a new client between batches, every record seen exactly once (counted), the
 *   object the service holds working on, the instance reporting the version it runs;
 * - a change the broker refuses puts the consumer back on its last good settings, and is not tried again;
 * - with LISTEN off, the re-read (the version poll) brings the change;
 * - a service that refuses a class keeps its client, and its callback hears the change;
 * - a database that goes away changes nothing: the same client, the same batches.
 */
import assert from 'node:assert/strict';
import { AddressInfo, Server, Socket, connect as connectTcp, createServer } from 'node:net';
import { test } from 'node:test';

import { Client, Pool } from 'pg';
import { Kafka } from 'kafkajs';

import { ConfigChange, ConsumerConfigLoader, LoaderOptions } from '@loomctl/consumer-config';
import {
  BROKERS, DATABASE_URL, configure, createTopic, eventually, newPool, produce, quietKafka, recordingLogger, sleep, tempDir, unique,
} from './support';

/** The guide's raw UPDATE (no loomctl); the time it committed. */
async function update(sql: string, ...values: unknown[]): Promise<number> {
  const client = new Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(sql, values);
  } finally {
    await client.end();
  }
  return performance.now();
}

interface Setup {
  service: string;
  pool: Pool;
  loader: ConsumerConfigLoader;
  log: ReturnType<typeof recordingLogger> & { errors: string[]; error(m: string): void };
  changes: ConfigChange[];
}

function setUp(prefix: string, assignments: string[], options: LoaderOptions = {}, databaseUrl = DATABASE_URL): Setup {
  const service = unique(prefix);
  configure(service, 'auto_offset_reset=earliest', ...assignments);
  const pool = newPool(databaseUrl);
  const base = recordingLogger();
  const log = Object.assign(base, { errors: [] as string[], error: (m: string) => void log.errors.push(m) });
  const changes: ConfigChange[] = [];
  const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), logger: log, onConfigChange: (c) => void changes.push(c), ...options });
  return { service, pool, loader, log, changes };
}

async function tearDown(s: Setup, consumer?: { disconnect(): Promise<void> }): Promise<void> {
  try {
    await consumer?.disconnect();
  } finally {
    await s.loader.close();
    await s.pool.end();
  }
}

interface Batch { size: number; at: number }

/** The loader's consumer of a new topic of 6000 records for ``s.service``, running: each batch's size and time. */
async function consuming(s: Setup, prefix: string) {
  const topic = await createTopic(unique(prefix));
  await produce(topic, 6000);
  const consumer = await s.loader.createConsumer(s.service, [topic], { brokers: BROKERS, ...quietKafka });
  const batches: Batch[] = [];
  await consumer.run({
    eachBatch: async ({ batch }) => {
      batches.push({ size: batch.messages.length, at: performance.now() });
      await sleep(10); // the service's work: the topic is not read to its end at once
    },
  });
  return { consumer, batches };
}

test('the guide\'s UPDATE of max_poll_records shows in the next batches, without a new client', async (t) => {
  const s = setUp('node-live', ['max_poll_records=50']);
  const { consumer, batches } = await consuming(s, 'node-live');
  try {
    await eventually('a batch of 50', () => (batches.some((b) => b.size === 50) ? true : undefined));
    await eventually('the loader listening', () => (s.loader.listening ? true : undefined));
    const updated = await update('UPDATE pipeline_consumer_configs SET max_poll_records = 5 WHERE service_name = $1', s.service);
    const first = await eventually('a batch under the new setting', () => batches.find((b) => b.at > updated && b.size <= 5), 30_000);
    await eventually('more batches', () => (batches.filter((b) => b.at > first.at).length >= 3 ? true : undefined));
    assert.ok(batches.filter((b) => b.at >= first.at).every((b) => b.size <= 5), 'no batch above 5 after the first one under it');
    assert.equal(consumer.loomctl.clients, 1, 'live: no new client');
    assert.equal(consumer.loomctl.settings.version, 2);
    t.diagnostic(`max_poll_records 50 -> 5: first batch under the new setting ${((first.at - updated) / 1000).toFixed(3)} s after the UPDATE committed`);
    assert.ok(s.log.infos.some((m) => m.includes(`${s.service}: config version 1 -> 2 applied: max_poll_records 50 -> 5 at the next poll`)), s.log.infos.join('\n'));
  } finally {
    await tearDown(s, consumer);
  }
});

test('a fetch_max_bytes change takes a new client without losing or repeating a record', async () => {
  const s = setUp('node-live-new', ['max_poll_records=100']);
  const topic = await createTopic(unique('node-live-new'), 3);
  const total = 3000;
  const sent = await produce(topic, total, unique('r'), 3);
  const consumer = await s.loader.createConsumer(s.service, [topic], { brokers: BROKERS, ...quietKafka });
  const joins: unknown[] = [];
  consumer.on(consumer.events.GROUP_JOIN, (event) => void joins.push(event));
  const received: string[] = [];
  try {
    await consumer.run({
      eachBatch: async ({ batch }) => {
        received.push(...batch.messages.map((m) => String(m.value)));
        await sleep(5);
      },
    });
    const instance = async (version: number) => {
      const { rows } = await s.pool.query<{ config_version: number; language: string; pid: number; consumer_group_id: string }>(
        'SELECT config_version, language, pid, consumer_group_id FROM consumer_instances WHERE instance_id = $1', [consumer.loomctl.instanceId]);
      return rows[0]?.config_version === version ? rows[0] : undefined;
    };
    const started = await eventually('the instance reporting version 1', () => instance(1));
    assert.deepEqual([started.language, started.pid], ['node', process.pid]);
    await eventually('the first records', () => (received.length > 0 ? true : undefined));
    await update('UPDATE pipeline_consumer_configs SET fetch_max_bytes = 2000000 WHERE service_name = $1', s.service);
    await eventually('a new client', () => (consumer.loomctl.clients === 2 ? true : undefined));
    assert.equal(consumer.loomctl.options.consumer.maxBytes, 2000000);
    await eventually('the instance reporting version 2', () => instance(2));
    // one marker per partition after every record: once each is in, nothing sent before it can still come
    const markers = await produce(topic, 3, unique('marker'), 3);
    await eventually('every record and the markers', () => (markers.every((v) => received.includes(v)) ? true : undefined), 60_000);
    // the object the service holds is the new client's: its group, its events
    const group = await consumer.describeGroup();
    assert.equal(group.state, 'Stable');
    assert.ok(joins.length >= 2, `listeners move to the new client: ${joins.length} joins heard`);
  } finally {
    await tearDown(s, consumer);
  }
  const counts = new Map<string, number>();
  for (const value of received) counts.set(value, (counts.get(value) ?? 0) + 1);
  const missing = sent.filter((v) => !counts.has(v));
  const twice = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual([missing.length, twice.length], [0, 0], `none lost, none twice: ${missing.length} lost, ${twice.length} twice`);
  assert.equal(received.length, total + 3);
  assert.deepEqual(s.changes.map((c) => [c.fieldsOf('recreate'), c.applied]), [[['fetch_max_bytes'], true]]);
  assert.ok(s.log.infos.some((m) => /fetch_max_bytes 52428800 -> 2000000 by a new client \(\d+\.\d s\)/.test(m)), s.log.infos.join('\n'));
  // what the first client processed was committed before the second one started: the group's offsets are at the end
  const admin = new Kafka({ brokers: BROKERS, ...quietKafka }).admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: consumer.loomctl.settings.consumerGroupId, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    for (const { partition, offset } of offsets?.partitions ?? []) {
      assert.equal(offset, ends.find((e) => e.partition === partition)?.high, `partition ${partition} committed to its end`);
    }
  } finally {
    await admin.disconnect();
  }
});

test('a change the broker refuses puts the consumer back on its last good settings, and is not tried again', async () => {
  const s = setUp('node-live-refused', ['max_poll_records=20']);
  const topic = await createTopic(unique('node-live-refused'));
  await produce(topic, 400, 'before');
  const consumer = await s.loader.createConsumer(s.service, [topic], { brokers: BROKERS, ...quietKafka });
  const received: string[] = [];
  try {
    await consumer.run({
      eachBatch: async ({ batch }) => {
        received.push(...batch.messages.map((m) => String(m.value)));
        await sleep(5);
      },
    });
    await eventually('the first records', () => (received.length > 0 ? true : undefined));
    // what the guide's raw UPDATE can store (within the table's CHECK): above the broker's group.max.session.timeout.ms
    await update('UPDATE pipeline_consumer_configs SET session_timeout_ms = 3600000, max_poll_interval_ms = 3600000 WHERE service_name = $1', s.service);
    const refusal = await eventually('the refusal', () => s.log.errors.find((m) => m.includes('refused by the new client')));
    assert.match(refusal, new RegExp(`^${s.service}: config version 2 refused by the new client \\(.+\\): back on version 1: .*session_timeout_ms 45000 -> 3600000 refused by the client`));
    assert.deepEqual([...consumer.loomctl.refusedVersions], [2]);
    assert.equal(consumer.loomctl.settings.version, 1);
    assert.equal(consumer.loomctl.options.consumer.sessionTimeout, 45000);
    // it goes on consuming on the old settings
    const after = await produce(topic, 50, 'after');
    await eventually('the records after the refusal', () => (after.every((v) => received.includes(v)) ? true : undefined), 60_000);
    assert.equal(consumer.loomctl.clients, 2, 'the first client and the one with the last good settings');
    const { rows } = await s.pool.query<{ config_version: number; refused_version: number }>(
      'SELECT config_version, refused_version FROM consumer_instances WHERE instance_id = $1', [consumer.loomctl.instanceId]);
    assert.deepEqual(rows.map((r) => [r.config_version, r.refused_version]), [[1, 2]]);
    // disconnected, the instance no longer counts as running
    await consumer.disconnect();
    const { rowCount } = await s.pool.query('SELECT 1 FROM consumer_instances WHERE instance_id = $1', [consumer.loomctl.instanceId]);
    assert.equal(rowCount, 0);
  } finally {
    await tearDown(s);
  }
  assert.equal(s.log.errors.filter((m) => m.includes('refused by the new client')).length, 1, s.log.errors.join('\n'));
  assert.deepEqual(s.changes.map((c) => c.applied), [false]);
});

test('without LISTEN the re-read brings the change', async () => {
  const s = setUp('node-live-ttl', ['max_poll_records=40'], { listen: false, ttlSeconds: 1 });
  const { consumer, batches } = await consuming(s, 'node-live-ttl');
  try {
    await eventually('a batch of 40', () => (batches.some((b) => b.size === 40) ? true : undefined));
    assert.equal(s.loader.listening, false);
    const updated = await update('UPDATE pipeline_consumer_configs SET max_poll_records = 7 WHERE service_name = $1', s.service);
    await eventually('a batch under the new setting', () => batches.find((b) => b.at > updated && b.size <= 7), 30_000);
    assert.equal(consumer.loomctl.clients, 1);
  } finally {
    await tearDown(s, consumer);
  }
});

test('a service that refuses recreate keeps its client, and hears the change', async () => {
  const s = setUp('node-live-keep', ['max_poll_records=25'], { refuse: ['recreate'] });
  const { consumer, batches } = await consuming(s, 'node-live-keep');
  try {
    await eventually('a batch of 25', () => (batches.some((b) => b.size === 25) ? true : undefined));
    const updated = await update(
      'UPDATE pipeline_consumer_configs SET max_poll_records = 4, fetch_max_bytes = 3000000 WHERE service_name = $1', s.service);
    await eventually('a batch under the new max_poll_records', () => batches.find((b) => b.at > updated && b.size <= 4), 30_000);
    assert.equal(consumer.loomctl.clients, 1);
    assert.equal(consumer.loomctl.options.consumer.maxBytes, 52428800, 'the client as it was built');
    assert.equal(s.changes.length, 1);
    assert.deepEqual([s.changes[0]?.fieldsOf('live'), s.changes[0]?.refusedClasses], [['max_poll_records'], ['recreate']]);
    const line = s.log.infos.find((m) => m.includes('applied'));
    assert.ok(line?.includes('fetch_max_bytes 52428800 -> 3000000 not applied: the service refuses this class'), line);
  } finally {
    await tearDown(s, consumer);
  }
  assert.throws(() => new ConsumerConfigLoader(newPool(), { refuse: ['broker'] }), /refuse takes the reload classes/);
});

/** A TCP relay to PostgreSQL that the test can take away: the database's outage, as the loader sees it. */
async function relay(): Promise<{ url: string; cut(): Promise<void> }> {
  const target = new URL(DATABASE_URL);
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connectTcp(Number(target.port || 5432), target.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const via = new URL(DATABASE_URL);
  via.hostname = '127.0.0.1';
  via.port = String((server.address() as AddressInfo).port);
  return {
    url: via.toString(),
    cut: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

test('a database that goes away changes nothing: the same client, the same batches', async () => {
  const db = await relay();
  const s = setUp('node-live-outage', ['max_poll_records=25'], { ttlSeconds: 1, retrySeconds: 1, connectTimeoutMs: 1000 }, db.url);
  const { consumer, batches } = await consuming(s, 'node-live-outage');
  try {
    await eventually('a batch of 25', () => (batches.some((b) => b.size === 25) ? true : undefined));
    await db.cut();
    const cut = performance.now();
    await eventually('the loader says the database is gone', () =>
      (s.log.warnings.some((m) => m.startsWith('config database unavailable')) ? true : undefined), 30_000);
    await eventually('five batches of 25 after the outage', () =>
      (batches.filter((b) => b.at > cut && b.size === 25).length >= 5 ? true : undefined), 30_000);
    assert.equal(consumer.loomctl.clients, 1);
    assert.equal(consumer.loomctl.settings.version, 1);
    assert.ok(batches.filter((b) => b.at > cut).every((b) => b.size <= 25));
  } finally {
    await tearDown(s, consumer).catch(() => undefined); // the pool's end meets the cut connections
  }
});
