/** Without LISTEN, a change made with `loomctl config set` reaches a running consumer after the TTL, not before. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ConsumerConfigLoader } from '@loomctl/consumer-config';
import { BROKERS, configure, createTopic, eventually, newPool, produce, quietKafka, recordingLogger, sleep, tempDir, unique } from './support';

test('loadConfig keeps the config for the TTL, then reads the change', async () => {
  const service = unique('node-ttl');
  configure(service, 'max_poll_records=5');
  const pool = newPool();
  const log = recordingLogger();
  // Long enough for `loomctl config set` (a process start) to finish well within it.
  const ttlSeconds = 10;
  const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), ttlSeconds, logger: log, listen: false });
  try {
    const loaded = performance.now();
    const first = await loader.loadConfig(service);
    assert.equal(first.source, 'database');
    assert.equal(first.maxPollRecords, 5);
    configure(service, 'max_poll_records=2');
    assert.ok(performance.now() - loaded < ttlSeconds * 1000 - 500, 'config set took longer than the TTL');
    assert.equal((await loader.loadConfig(service)).maxPollRecords, 5, 'within the TTL the loaded config stays');
    await sleep(loaded + ttlSeconds * 1000 + 100 - performance.now());
    const second = await loader.loadConfig(service);
    assert.equal(second.maxPollRecords, 2);
    assert.equal(second.version, (first.version ?? 0) + 1);
  } finally {
    await pool.end();
  }
});

test('a running consumer cuts batches by the new max_poll_records after the TTL', async (t) => {
  const service = unique('node-ttl-run');
  const topic = await createTopic(unique('node-ttl'));
  configure(service, 'max_poll_records=5', 'auto_offset_reset=earliest');
  const pool = newPool();
  const log = recordingLogger();
  const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), ttlSeconds: 1, logger: log, listen: false });
  const consumer = await loader.createConsumer(service, [topic], { brokers: BROKERS, ...quietKafka });
  const sizes = new Map<string, number[]>();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const wave = waveOf(m.value);
        sizes.set(wave, [...(sizes.get(wave) ?? [])]);
      }
      const wave = waveOf(batch.messages[0]?.value);
      sizes.get(wave)!.push(batch.messages.length);
    },
  });
  try {
    await produce(topic, 40, 'before');
    await eventually('the first wave', () => (sum(sizes.get('before')) >= 40 ? true : undefined));
    configure(service, 'max_poll_records=2');
    await sleep(1200);
    await produce(topic, 40, 'after');
    await eventually('the second wave', () => (sum(sizes.get('after')) >= 40 ? true : undefined));
  } finally {
    await consumer.disconnect();
    await pool.end();
  }
  assert.equal(Math.max(...sizes.get('before')!), 5);
  assert.equal(Math.max(...sizes.get('after')!), 2);
  assert.ok(log.infos.some((m) => m.includes('config version 1 -> 2 applied: max_poll_records 5 -> 2 at the next poll')), log.infos.join('\n'));
  t.diagnostic(`batches before: ${sizes.get('before')!.length} (largest 5), after the change: ${sizes.get('after')!.length} (largest 2)`);
});

function sum(values: number[] | undefined): number {
  return (values ?? []).reduce((a, b) => a + b, 0);
}

/** The wave a record was produced in: its value before the first '-'. */
function waveOf(value: unknown): string {
  return String(value).split('-')[0] ?? '';
}
