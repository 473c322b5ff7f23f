/** The config database unreachable: a consumer from the disk cache, else from the defaults, with one warning. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';

import { ConsumerConfigLoader, DEFAULTS } from '@loomctl/consumer-config';
import { BROKERS, configure, createTopic, eventually, newPool, produce, quietKafka, recordingLogger, tempDir, unique } from './support';

// Nothing listens on port 1 of the loopback: every connection is refused at once.
const REFUSED = 'postgresql://loom@127.0.0.1:1/loom';

test('with the database unreachable the consumer comes from the cache, then from the defaults', async (t) => {
  const service = unique('node-cache');
  const topic = await createTopic(unique('node-cache'));
  configure(service, 'max_poll_records=3', 'auto_offset_reset=earliest', 'session_timeout_ms=20000', 'heartbeat_interval_ms=2000');
  const cacheDir = tempDir();

  const pool = newPool();
  const online = await new ConsumerConfigLoader(pool, { cacheDir, logger: recordingLogger() }).loadConfig(service);
  await pool.end();
  assert.equal(online.source, 'database');
  const cached = JSON.parse(readFileSync(join(cacheDir, `${service}.json`), 'utf8')) as { settings: Record<string, unknown> };
  assert.equal(cached.settings.max_poll_records, 3);

  const down = newPool(REFUSED);
  const log = recordingLogger();
  const loader = new ConsumerConfigLoader(down, { cacheDir, retrySeconds: 0, logger: log });
  const consumer = await loader.createConsumer(service, [topic], { brokers: BROKERS, ...quietKafka });
  const sizes: number[] = [];
  await consumer.run({ eachBatch: async ({ batch }) => void sizes.push(batch.messages.length) });
  try {
    assert.equal(consumer.loomctl.settings.source, 'cache');
    assert.equal(consumer.loomctl.options.consumer.sessionTimeout, 20000);
    await produce(topic, 20, 'c');
    await eventually('20 messages from a cached config', () => (sizes.reduce((a, b) => a + b, 0) >= 20 ? true : undefined));
  } finally {
    await consumer.disconnect();
  }
  assert.equal(Math.max(...sizes), 3, 'the cached max_poll_records is enforced');
  const outages = log.warnings.filter((m) => m.includes('config database unavailable'));
  assert.equal(outages.length, 1, `one warning for the outage, not one per batch: ${log.warnings.join('\n')}`);
  assert.match(outages[0] ?? 'no warning', /using the cached config .* \(version 1\)/);

  const empty = tempDir();
  const log2 = recordingLogger();
  const fresh = new ConsumerConfigLoader(down, { cacheDir: empty, logger: log2 });
  const fallback = await fresh.createConsumer(service, [topic], { brokers: BROKERS, ...quietKafka });
  try {
    assert.equal(fallback.loomctl.settings.source, 'defaults');
    assert.deepEqual({ ...fallback.loomctl.settings.settings }, { ...DEFAULTS });
    assert.equal(fallback.loomctl.options.consumer.groupId, service, 'the group of a service without a config is its name');
  } finally {
    await fallback.disconnect();
    await down.end();
  }
  assert.equal(log2.warnings.filter((m) => m.includes('no cached config')).length, 1, log2.warnings.join('\n'));
  assert.ok(!existsSync(join(empty, `${service}.json`)), 'the defaults are never cached as if read');
  t.diagnostic(`from the cache: ${sizes.length} batches, largest ${Math.max(...sizes)}`);
});

test('a database that accepts connections but never answers falls back within connectTimeoutMs', async () => {
  const sockets: import('node:net').Socket[] = [];
  const server: Server = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as import('node:net').AddressInfo).port;
  const pool = newPool(`postgresql://loom@127.0.0.1:${port}/loom`);
  const log = recordingLogger();
  const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), connectTimeoutMs: 500, logger: log });
  const started = performance.now();
  try {
    const config = await loader.loadConfig(unique('node-hang'));
    assert.equal(config.source, 'defaults');
    assert.ok(performance.now() - started < 3000, `fell back after ${Math.round(performance.now() - started)} ms`);
    assert.match(log.warnings[0] ?? 'no warning', /timed out after 500 ms/);
  } finally {
    for (const socket of sockets) socket.destroy();
    server.close();
    await pool.end().catch(() => undefined);
  }
});

test('the database back: the next read after retrySeconds comes from it', async () => {
  const service = unique('node-back');
  configure(service, 'max_poll_records=9');
  const cacheDir = tempDir();
  const log = recordingLogger();
  const down = newPool(REFUSED);
  const offline = new ConsumerConfigLoader(down, { cacheDir, logger: log });
  assert.equal((await offline.loadConfig(service)).source, 'defaults');
  await down.end();
  // The same service, a loader whose pool now reaches the database: reads it and caches it.
  const pool = newPool();
  const online = new ConsumerConfigLoader(pool, { cacheDir, logger: log });
  try {
    const config = await online.loadConfig(service);
    assert.equal(config.source, 'database');
    assert.equal(config.maxPollRecords, 9);
    assert.ok(existsSync(join(cacheDir, `${service}.json`)));
  } finally {
    await pool.end();
  }
});
