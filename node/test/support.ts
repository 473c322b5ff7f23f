/** What the Node tests share: the real stack's addresses, the loomctl CLI, topics and records on the real broker. */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Admin, Kafka, Partitioners, logLevel } from 'kafkajs';
import { Pool } from 'pg';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/test_node_package.py (make test)`);
  return value;
}

export const DATABASE_URL = required('LOOM_DATABASE_URL');
export const BROKERS = required('LOOM_KAFKA_BOOTSTRAP_SERVERS').split(',');
const LOOMCTL = process.env.LOOMCTL || 'loomctl';

export const quietKafka = { logLevel: logLevel.NOTHING };

export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export function tempDir(prefix = 'loom-node-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `loomctl ARGS` against the test database and broker. */
export function loomctl(...args: string[]): CliResult {
  const result = spawnSync(LOOMCTL, args, {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', COLUMNS: '200', LOOM_ACTOR: 'node-tests', LOOM_KAFKA_CONFIG: '' },
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `loomctl ARGS -o json`, parsed as the caller says the command's JSON is shaped. */
export function loomctlJson<T>(...args: string[]): T {
  const result = loomctl(...args, '-o', 'json');
  if (result.status !== 0) throw new Error(`loomctl ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** Create the service with these settings, or set them when it exists. */
export function configure(service: string, ...assignments: string[]): void {
  let result = loomctl('config', 'set', service, '--create', ...assignments);
  if (result.status === 4) result = loomctl('config', 'set', service, ...assignments);
  if (result.status !== 0) throw new Error(`loomctl config set ${service} exited ${result.status}: ${result.stderr}`);
}

export function newPool(connectionString = DATABASE_URL): Pool {
  return new Pool({ connectionString, max: 4 });
}

const kafka = new Kafka({ brokers: BROKERS, clientId: 'node-tests', ...quietKafka });

async function withAdmin<T>(use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopic(topic: string, partitions = 1): Promise<string> {
  await withAdmin(async (admin) => {
    const existing = await admin.listTopics();
    if (!existing.includes(topic)) {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
    }
  });
  return topic;
}

/** ``count`` records (values ``prefix-0`` ...) spread over the topic's partitions, in one send. */
export async function produce(topic: string, count: number, prefix = 'm', partitions = 1): Promise<string[]> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const values = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  try {
    await producer.send({ topic, acks: -1, messages: values.map((value, i) => ({ value, partition: i % partitions })) });
  } finally {
    await producer.disconnect();
  }
  return values;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll ``check`` until it returns a value that is not undefined, or fail after ``ms``. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  // Typed Error for the message below; String() shows anything else check() might throw just the same.
  let last: Error | undefined;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error as Error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(250);
  }
}

/** A logger that keeps what the package says. */
export function recordingLogger(): { warnings: string[]; infos: string[]; warn(m: string): void; info(m: string): void } {
  const log = {
    warnings: [] as string[],
    infos: [] as string[],
    warn: (m: string) => void log.warnings.push(m),
    info: (m: string) => void log.infos.push(m),
  };
  return log;
}

/** ``body`` with a pool of its own and a service configured for the test; the pool ends afterwards. */
export async function withService(prefix: string, body: (pool: Pool, service: string) => Promise<void>): Promise<void> {
  const pool = newPool();
  const service = unique(prefix);
  configure(service);
  try {
    await body(pool, service);
  } finally {
    await pool.end();
  }
}
