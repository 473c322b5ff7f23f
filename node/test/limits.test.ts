/** max_poll_records enforced on a real broker; the commits leave lag 0 as `loomctl lag show` reports. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ConsumerConfigLoader } from '@loomctl/consumer-config';
import { BROKERS, configure, createTopic, eventually, loomctlJson, newPool, produce, quietKafka, recordingLogger, tempDir, unique } from './support';

/** The fields of a `loomctl lag show --by partition -o json` row this test reads. */
interface PartitionLag {
  topic_name: string;
  lag: number;
  committed_offset: number;
}

test('batches never exceed max_poll_records and commits leave lag 0', async (t) => {
  const service = unique('node-limit');
  const topic = await createTopic(unique('node-limit'), 2);
  configure(service, 'max_poll_records=7', 'auto_offset_reset=earliest', 'auto_commit_interval_ms=500');
  const sent = await produce(topic, 300, 'x', 2);
  const pool = newPool();
  const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), logger: recordingLogger() });
  const consumer = await loader.createConsumer(service, [topic], { brokers: BROKERS, ...quietKafka });
  const sizes: number[] = [];
  const offsets = new Set<string>();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      sizes.push(batch.messages.length);
      assert.equal(batch.lastOffset(), batch.messages.at(-1)?.offset);
      for (const m of batch.messages) offsets.add(`${batch.partition}:${m.offset}`);
    },
  });
  try {
    await eventually('all 300 messages', () => (offsets.size >= sent.length ? true : undefined), 60_000);
    const lag = await eventually('lag 0 in loomctl lag show', () => {
      const rows = loomctlJson<PartitionLag[]>('lag', 'show', service, '--by', 'partition');
      const parts = rows.filter((r) => r.topic_name === topic);
      return parts.length === 2 && parts.every((r) => r.lag === 0) ? parts : undefined;
    }, 30_000);
    assert.deepEqual(lag.map((r) => r.committed_offset).sort(), [150, 150]);
  } finally {
    await consumer.disconnect();
    await pool.end();
  }
  const largest = Math.max(...sizes);
  assert.ok(largest <= 7, `a batch of ${largest} exceeds max_poll_records=7`);
  assert.equal(largest, 7, 'a fetch of 150 messages per partition is cut into slices of 7');
  assert.equal(offsets.size, 300, 'every message once');
  t.diagnostic(`figures: 300 messages, ${sizes.length} batches, largest ${largest}`);
});
