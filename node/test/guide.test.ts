/**
 * The guide's "TypeScript/Node.js Services" snippet, verbatim but for the addresses (and the line that
 * keeps what eachBatch receives), consuming real messages from the real broker.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createOptimizedConsumer } from './services/consumerConfigLoader';
import { Pool } from 'pg';

import { BROKERS, DATABASE_URL, configure, createTopic, eventually, produce, unique } from './support';

test('the guide snippet consumes real messages in batches of at most max_poll_records', async (t) => {
  configure('my-service-name', 'max_poll_records=10', 'auto_offset_reset=earliest');
  await createTopic('device.audio.raw', 3);
  const marker = unique('guide');
  const sent = await produce('device.audio.raw', 60, marker, 3);
  const received: string[] = [];
  const batchSizes: number[] = [];
  const started = performance.now();
  let firstBatchMs: number | undefined;

  // --- the guide, verbatim but for the addresses ---
  // Create database pool
  const pool = new Pool({ connectionString: DATABASE_URL });

  // Create optimized consumer
  const consumer = await createOptimizedConsumer(
    pool,
    { brokers: BROKERS },
    'my-service-name',
    ['device.audio.raw']
  );

  // Use the consumer
  await consumer.run({
    eachBatch: async ({ batch }) => {
      // Process messages
      firstBatchMs ??= performance.now() - started;
      batchSizes.push(batch.messages.length);
      received.push(...batch.messages.map((m) => String(m.value)));
    }
  });
  // --- end of the guide ---

  try {
    await eventually('every message of this run', () => (sent.every((v) => received.includes(v)) ? true : undefined), 60_000);
  } finally {
    await consumer.disconnect();
    await pool.end();
  }
  const largest = Math.max(...batchSizes);
  assert.ok(largest <= 10, `a batch of ${largest} messages exceeds max_poll_records=10`);
  assert.equal(received.filter((v) => v.startsWith(`${marker}-`)).length, sent.length, 'each message exactly once');
  t.diagnostic(`figures: ${sent.length} messages, ${batchSizes.length} batches, largest ${largest}, first batch after ${Math.round(firstBatchMs ?? -1)} ms`);
});
