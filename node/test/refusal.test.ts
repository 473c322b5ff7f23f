/** A session timeout the broker refuses (outside group.min/max.session.timeout.ms): KafkaJS stops the consumer, the loader says why. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ConsumerConfigLoader, DEFAULTS } from '@loomctl/consumer-config';
import { BROKERS, createTopic, eventually, quietKafka, recordingLogger, tempDir, unique } from './support';

test('a refused session timeout is one warning naming the broker\'s bounds', async () => {
  const topic = await createTopic(unique('node-refused'));
  const group = unique('node-refused-group');
  const cacheDir = tempDir();
  // what the guide's raw SQL UPDATE can store: within the table's CHECK, above the broker's 30 minutes
  writeFileSync(join(cacheDir, 'refused-svc.json'), JSON.stringify({
    service_name: 'refused-svc', consumer_group_id: group, version: 2,
    settings: { ...DEFAULTS, session_timeout_ms: 3_600_000, max_poll_interval_ms: 3_600_000 },
  }));
  const down = { connect: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1')) };
  const log = recordingLogger();
  const loader = new ConsumerConfigLoader(down, { cacheDir, logger: log });
  const consumer = await loader.createConsumer('refused-svc', [topic], { brokers: BROKERS, ...quietKafka });
  try {
    await consumer.run({ eachBatch: async () => undefined });
    const refusal = await eventually('the refusal reported', () => log.warnings.find((m) => m.includes('refuses every join')));
    assert.match(refusal, new RegExp(`consumer group ${group}: session_timeout_ms=3600000 is outside the broker's group.min/max.session.timeout.ms \\(1000\\.\\.1800000\\)`));
  } finally {
    await consumer.disconnect();
  }
  assert.equal(log.warnings.filter((m) => m.includes('refuses every join')).length, 1, log.warnings.join('\n'));
});
