/** Bad input is a clear ConsumerConfigError (a rejection the caller can catch), never an unhandled rejection. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ConsumerConfigError, ConsumerConfigLoader, createOptimizedConsumer } from '@loomctl/consumer-config';
import { Client } from 'pg';

import { BROKERS, DATABASE_URL, configure, newPool, quietKafka, recordingLogger, tempDir, unique, withService } from './support';

const unhandled: unknown[] = [];
const record = (reason: unknown) => void unhandled.push(reason);
before(() => process.on('unhandledRejection', record));
after(() => {
  process.off('unhandledRejection', record);
  assert.deepEqual(unhandled, [], 'no unhandled rejection');
});

function rejection(code: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ConsumerConfigError, `not a ConsumerConfigError: ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    assert.equal(error.message.split('\n').length, 1, 'one line');
    return true;
  };
}

test('an unknown service is NOT_FOUND, naming the command that creates it', async () => {
  const pool = newPool();
  const service = unique('node-missing');
  try {
    await assert.rejects(createOptimizedConsumer(pool, { brokers: BROKERS }, service, ['t'], { cacheDir: tempDir() }),
      rejection('NOT_FOUND', new RegExp(`no consumer config for "${service}" .*loomctl config set ${service} --create`)));
    const log = recordingLogger();
    const loader = new ConsumerConfigLoader(pool, { cacheDir: tempDir(), defaultsWhenMissing: true, logger: log });
    assert.equal((await loader.loadConfig(service)).source, 'defaults', 'as the Python loader, when asked');
    assert.match(log.warnings[0] ?? 'no warning', /using the defaults/);
  } finally {
    await pool.end();
  }
});

test('a share-group service is UNSUPPORTED: KafkaJS has no share consumer, and no consumer joins its group', async () => {
  const pool = newPool();
  const service = unique('node-share');
  configure(service, 'group_protocol=share', 'heartbeat_interval_ms=5000');
  try {
    await assert.rejects(createOptimizedConsumer(pool, { brokers: BROKERS }, service, ['t'], { cacheDir: tempDir() }),
      rejection('UNSUPPORTED', new RegExp(`${service} is a share group .*KafkaJS has no share consumer`)));
  } finally {
    await pool.end();
  }
});

test('a bad pool, service name, topic list or broker list is BAD_INPUT', async () => {
  for (const pool of [undefined, null, 'postgresql://x', {}, { connect: 1 }]) {
    await assert.rejects(createOptimizedConsumer(pool, { brokers: BROKERS }, 'svc', ['t']), rejection('BAD_INPUT', /pool must be a pg Pool/));
  }
  await assert.rejects(createOptimizedConsumer({ connect: async () => undefined }, { brokers: BROKERS }, 'svc', ['t'], { cacheDir: tempDir() }),
    rejection('BAD_INPUT', /pool.connect\(\) must give a client with query\(\) and release\(\)/));
  const client = new Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await assert.rejects(createOptimizedConsumer(client, { brokers: BROKERS }, unique('node-client'), ['t'], { cacheDir: tempDir() }),
      rejection('BAD_INPUT', /pool must be a pg Pool, not a Client/));
  } finally {
    await client.end();
  }
  const pool = newPool();
  const service = unique('node-bad');
  configure(service);
  const options = { cacheDir: tempDir(), logger: recordingLogger() };
  try {
    for (const name of ['', ' x', '../etc/passwd', 'a'.repeat(250), 42 as unknown as string]) {
      await assert.rejects(createOptimizedConsumer(pool, { brokers: BROKERS }, name, ['t'], options), rejection('BAD_INPUT', /invalid service name/));
    }
    for (const topics of [[], undefined, 'device.audio.raw', [''], [7]] as unknown as string[][]) {
      await assert.rejects(createOptimizedConsumer(pool, { brokers: BROKERS }, service, topics, options), rejection('BAD_INPUT', /topic/));
    }
    const env = process.env.LOOM_KAFKA_BOOTSTRAP_SERVERS;
    delete process.env.LOOM_KAFKA_BOOTSTRAP_SERVERS;
    try {
      await assert.rejects(createOptimizedConsumer(pool, {}, service, ['t'], { ...options, kafkaConfigPath: null }), rejection('BAD_INPUT', /no Kafka brokers/));
    } finally {
      process.env.LOOM_KAFKA_BOOTSTRAP_SERVERS = env;
    }
    for (const brokers of [[], [''], 'localhost:9092', [9092]]) {
      await assert.rejects(createOptimizedConsumer(pool, { brokers }, service, ['t'], options), rejection('BAD_INPUT', /brokers must be/));
    }
    await assert.rejects(createOptimizedConsumer(pool, null as never, service, ['t'], options), rejection('BAD_INPUT', /Kafka config must be an object/));
    assert.throws(() => new ConsumerConfigLoader(pool, { ttlSeconds: Number.NaN }), rejection('BAD_INPUT', /ttlSeconds/));
    const loader = new ConsumerConfigLoader(pool, options);
    await assert.rejects(loader.recordProcessingMetrics(service, -1, 5), rejection('BAD_INPUT', /batchSize/));
    await assert.rejects(loader.recordProcessingMetrics(service, 1, Number.POSITIVE_INFINITY), rejection('BAD_INPUT', /processingTimeMs/));
  } finally {
    await pool.end();
  }
});

test('a broken LOOM_KAFKA_CONFIG file is a clear error, its values never shown', async () => {
  await withService('node-props', async (pool, service) => {
    const folder = tempDir();
    const file = join(folder, 'client.properties');
    writeFileSync(file, 'security.protocol=SASL_SSL\nsasl.mechanism=GSSAPI\nsasl.password=s3cret\n');
    await assert.rejects(createOptimizedConsumer(pool, { brokers: BROKERS }, service, ['t'], { cacheDir: folder, kafkaConfigPath: file }),
      (error: unknown) => rejection('UNSUPPORTED', /sasl.mechanism "GSSAPI"/)(error) && !String(error).includes('s3cret'));
    writeFileSync(file, 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=u\n');
    await assert.rejects(createOptimizedConsumer(pool, { brokers: BROKERS }, service, ['t'], { cacheDir: folder, kafkaConfigPath: file }),
      rejection('BAD_INPUT', /needs sasl.username and sasl.password/));
    await assert.rejects(createOptimizedConsumer(pool, { brokers: BROKERS }, service, ['t'], { cacheDir: folder, kafkaConfigPath: join(folder, 'nope') }),
      rejection('BAD_INPUT', /cannot read the Kafka properties file .*ENOENT/));
  });
});

test('an unreachable broker rejects createOptimizedConsumer, it does not hang or crash', async () => {
  await withService('node-nobroker', async (pool, service) => {
    await assert.rejects(
      createOptimizedConsumer(pool, { brokers: ['127.0.0.1:1'], connectionTimeout: 300, retry: { retries: 0 }, ...quietKafka }, service, ['t'],
        { cacheDir: tempDir(), logger: recordingLogger() }),
      /ECONNREFUSED|Connection error|connect/i,
    );
  });
});
