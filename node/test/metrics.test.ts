/** What a Node consumer records appears in `loomctl metrics show`; recommendations come back as rows. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ConsumerConfigLoader } from '@loomctl/consumer-config';
import { BROKERS, configure, createTopic, eventually, loomctlJson, newPool, produce, quietKafka, recordingLogger, tempDir, unique } from './support';

/** The part of `loomctl metrics show -o json` these tests read. */
interface MetricsShow {
  summary: {
    consumer_group_id: string;
    batches: number;
    messages_received: number;
    messages_failed: number;
    messages_processed: number;
    avg_processing_time_ms: number;
  };
}

test('metrics recorded by a Node consumer appear in loomctl metrics show', async (t) => {
  const service = unique('node-metrics');
  const topic = await createTopic(unique('node-metrics'));
  configure(service, 'max_poll_records=10', 'auto_offset_reset=earliest');
  const pool = newPool();
  const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), logger: recordingLogger() });
  const consumer = await loader.createConsumer(service, [topic], { brokers: BROKERS, ...quietKafka });
  let seen = 0;
  let slices = 0;
  await consumer.run({
    eachBatch: async ({ batch }) => {
      slices += 1;
      await loader.trackBatch(service, batch, async (metrics) => {
        // Every message whose value ends in 0 fails: 3 of 30.
        metrics.failed = batch.messages.filter((m) => String(m.value).endsWith('0')).length;
        seen += batch.messages.length;
      });
    },
  });
  try {
    await produce(topic, 30, 'p');
    await eventually('30 messages', () => (seen >= 30 ? true : undefined));
  } finally {
    await consumer.disconnect();
  }
  await assert.rejects(loader.trackBatch(service, [{ offset: '0' }, { offset: '1' }], async () => {
    throw new Error('the handler failed');
  }), /the handler failed/);
  await pool.end();

  const { summary } = loomctlJson<MetricsShow>('metrics', 'show', service, '--since', '1h');
  assert.equal(summary.consumer_group_id, service);
  assert.equal(summary.batches, slices + 1);
  assert.equal(summary.messages_received, 32);
  assert.equal(summary.messages_failed, 3 + 2, 'the thrown batch counts as failed');
  assert.equal(summary.messages_processed, 27);
  assert.ok(summary.avg_processing_time_ms >= 0);
  t.diagnostic(`metrics show: ${summary.batches} batches, ${summary.messages_received} received, ${summary.messages_failed} failed`);
});

test('trackBatches records every slice itself; a database outage never reaches the service', async () => {
  const service = unique('node-track');
  const topic = await createTopic(unique('node-track'));
  configure(service, 'max_poll_records=4', 'auto_offset_reset=earliest');
  const pool = newPool();
  const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), logger: recordingLogger() });
  const consumer = await loader.createConsumer(service, [topic], { brokers: BROKERS, ...quietKafka }, { trackBatches: true });
  let seen = 0;
  await consumer.run({ eachBatch: async ({ batch }) => void (seen += batch.messages.length) });
  try {
    await produce(topic, 12, 't');
    await eventually('12 messages', () => (seen >= 12 ? true : undefined));
  } finally {
    await consumer.disconnect();
    await pool.end();
  }
  const { summary } = loomctlJson<MetricsShow>('metrics', 'show', service);
  assert.equal(summary.messages_received, 12);
  assert.ok(summary.batches >= 3, `slices of at most 4: ${summary.batches} batches`);

  const log = recordingLogger();
  const down = newPool('postgresql://loom@127.0.0.1:1/loom');
  const offline = new ConsumerConfigLoader(down, { cacheDir: tempDir(), logger: log });
  assert.equal(await offline.recordProcessingMetrics(service, 5, 12.5), null);
  assert.match(log.warnings.join('\n'), /cannot record processing metrics of node-track-/);
  await down.end();
});

test('getProcessingRecommendations returns rows with service_name and recommendation', async () => {
  const service = unique('node-recommend');
  configure(service, 'max_poll_records=10');
  const pool = newPool();
  const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), logger: recordingLogger() });
  try {
    await loader.loadConfig(service);
    // Half the messages failing is a recommendation of its own (fix the failures first).
    assert.ok(await loader.recordProcessingMetrics(service, 10, 50, 5));
    const rows = await loader.getProcessingRecommendations();
    const row = rows.find((r) => r.service_name === service);
    assert.ok(row, `no recommendation for ${service} among ${rows.length} rows`);
    assert.match(String(row.recommendation), /50(\.0)?% of messages failed/);
    for (const r of rows) {
      assert.equal(typeof r.service_name, 'string');
      assert.equal(typeof r.recommendation, 'string');
    }
  } finally {
    await pool.end();
  }
});
