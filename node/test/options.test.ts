/** The options of a row equal `loomctl config show SERVICE --client kafkajs`; what KafkaJS then receives. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { Kafka } from 'kafkajs';

import { ConsumerConfigLoader, FIELDS, KafkaClientConfig, KafkajsOptions, unhonoured } from '@loomctl/consumer-config';
import { BROKERS, configure, createTopic, loomctl, loomctlJson, newPool, quietKafka, recordingLogger, tempDir, unique } from './support';

const ROWS = {
  defaults: [],
  'ai-model': [],
  custom: [
    'max_poll_records=42', 'max_poll_interval_ms=120000', 'session_timeout_ms=30000', 'heartbeat_interval_ms=5000',
    'fetch_min_bytes=1024', 'fetch_max_bytes=2097152', 'fetch_max_wait_ms=250', 'max_partition_fetch_bytes=262144',
    'request_timeout_ms=45000', 'enable_auto_commit=false', 'auto_commit_interval_ms=1000', 'auto_offset_reset=earliest',
    'partition_assignment_strategy=roundrobin', 'isolation_level=read_uncommitted',
  ],
} satisfies Record<string, string[]>;

test('kafkajs options equal loomctl config show --client kafkajs for the same row', async () => {
  const pool = newPool();
  const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), logger: recordingLogger() });
  try {
    for (const [name, assignments] of Object.entries(ROWS)) {
      const service = unique(`node-opts-${name}`);
      if (name === 'ai-model') {
        configure(service);
        const applied = loomctl('config', 'apply-profile', service, 'ai-model');
        assert.equal(applied.status, 0, applied.stderr);
      } else {
        configure(service, ...assignments);
      }
      const shown = loomctlJson<KafkajsOptions>('config', 'show', service, '--client', 'kafkajs');
      assert.deepEqual((await loader.loadConfig(service)).kafkajs(), shown, name);
    }
  } finally {
    await pool.end();
  }
});

test('what KafkaJS receives: requestTimeout on the client, the rest of the table on consumer()', async () => {
  const service = unique('node-opts-real');
  const topic = await createTopic(unique('node-opts'));
  configure(service, ...ROWS.custom);
  const pool = newPool();
  const log = recordingLogger();
  const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), logger: log });
  const received: { client?: KafkaClientConfig; consumer?: Record<string, unknown> } = {};
  // The real client, with its constructor's and consumer()'s arguments kept.
  const kafkaFactory = (config: KafkaClientConfig) => {
    received.client = config;
    const kafka = new Kafka(config);
    return { consumer: (options: Record<string, unknown> & { groupId: string }) => ((received.consumer = options), kafka.consumer(options)) };
  };
  const consumer = await loader.createConsumer(service, [topic], { brokers: BROKERS, ...quietKafka }, { kafkaFactory });
  await consumer.disconnect();
  await pool.end();
  const shown = loomctlJson<KafkajsOptions>('config', 'show', service, '--client', 'kafkajs');
  const { requestTimeout, partitionAssigners, ...rest } = shown.consumer;
  assert.equal(received.client?.requestTimeout, requestTimeout);
  assert.deepEqual(received.client?.brokers, BROKERS);
  assert.deepEqual(received.consumer, rest, 'with a custom client the assigner is left to it');
  assert.deepEqual(partitionAssigners, ['roundrobin']);
  assert.equal(log.warnings.length, 0, `roundrobin and table settings KafkaJS honours: no warning (${log.warnings.join(',')})`);
});

test('one warning names every setting KafkaJS cannot honour, none at the defaults', () => {
  const defaults = Object.fromEntries(FIELDS.map((f) => [f.name, f.default]));
  assert.match(unhonoured(defaults) ?? '', /^KafkaJS cannot honour partition_assignment_strategy=range \(KafkaJS ships only the round-robin assigner/);
  assert.equal(unhonoured({ ...defaults, partition_assignment_strategy: 'roundrobin' }), null);
  const message = unhonoured({
    ...defaults, partition_assignment_strategy: 'cooperative-sticky', reconnect_backoff_ms: 5000, auto_offset_reset: 'none',
  }, 'consumer');
  assert.ok(message);
  for (const part of ['cooperative-sticky', 'reconnect_backoff_ms=5000', 'auto_offset_reset=none', 'group_protocol=consumer']) {
    assert.ok(message.includes(part), `${part} missing from: ${message}`);
  }
  assert.equal(message.split('\n').length, 1);
  assert.ok(!message.includes('retry_backoff_ms'), 'retry_backoff_ms maps to retry.initialRetryTime: KafkaJS honours it');
  // the protocol read from the table's own group_protocol field is named once, not as a field without an option
  const fromTable = unhonoured({ ...defaults, partition_assignment_strategy: 'roundrobin', group_protocol: 'consumer', group_remote_assignor: 'range' });
  assert.ok(fromTable);
  assert.equal(fromTable.split('group_protocol').length, 2, fromTable);
  assert.ok(fromTable.includes('config push') && !fromTable.includes('group_remote_assignor'), fromTable);
});

test('LOOM_KAFKA_CONFIG: bootstrap.servers and client.id from the properties file reach the client', async () => {
  const service = unique('node-opts-props');
  const topic = await createTopic(unique('node-opts-props'));
  configure(service);
  const file = join(tempDir(), 'client.properties');
  writeFileSync(file, `# as for the Python loader\nsecurity.protocol=PLAINTEXT\nbootstrap.servers=${BROKERS.join(',')}\nclient.id=from-file\n`);
  const pool = newPool();
  const env = process.env.LOOM_KAFKA_BOOTSTRAP_SERVERS;
  delete process.env.LOOM_KAFKA_BOOTSTRAP_SERVERS;
  process.env.LOOM_KAFKA_CONFIG = file;
  try {
    const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), logger: recordingLogger() });
    assert.equal(loader.kafkaConfigPath, file);
    const consumer = await loader.createConsumer(service, [topic], { ...quietKafka });
    await consumer.disconnect();
    assert.deepEqual(consumer.loomctl.clientConfig.brokers, BROKERS);
    assert.equal(consumer.loomctl.clientConfig.clientId, 'from-file');
    assert.equal(consumer.loomctl.clientConfig.ssl, undefined);
  } finally {
    process.env.LOOM_KAFKA_BOOTSTRAP_SERVERS = env;
    delete process.env.LOOM_KAFKA_CONFIG;
    await pool.end();
  }
});
