import { createHash, randomUUID } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, mkdirSync, openSync, readSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

import { limitBatches } from './batches';
import { ConsumerConfigError, shown } from './errors';
import { DEFAULTS, FIELDS, FIELD_TABLE, SERVICE_NAME, Settings, coerce, fits, ruleHolds } from './fields';
import { BatchLike, ConsumerLike, EachBatchPayloadLike, KafkaClientConfig, KafkaFactory, KafkaLike, MessageLike, RunConfigLike } from './kafka';
import { ConfigChange, ListenClientLike, Listener, REFUSABLE, ReloadClass, changeBetween } from './live';
import { KafkajsOptions, kafkajsOptions, unhonoured } from './options';
import { readPropertiesFile, securityConfig } from './properties';

export const ENV_CACHE_DIR = 'LOOM_CONFIG_CACHE_DIR';
export const ENV_KAFKA_CONFIG = 'LOOM_KAFKA_CONFIG';
export const ENV_BOOTSTRAP_SERVERS = 'LOOM_KAFKA_BOOTSTRAP_SERVERS';
export const DEFAULT_TTL_SECONDS = 60;
export const DEFAULT_RETRY_SECONDS = 10;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/** The largest cache file read (1 MiB): the loader writes about 1 KB, so anything larger is not its file. */
export const CACHE_MAX_BYTES = 1 << 20;
/** How long the loader waits for the broker's session timeout bounds once the broker has refused a join. */
const BOUNDS_TIMEOUT_MS = 5000;
const SESSION_TIMEOUT_BOUNDS = ['group.min.session.timeout.ms', 'group.max.session.timeout.ms'] as const;
const GROUP_ID_MAX = 249;

const METRICS_SQL = 'SELECT record_processing_metrics($1, $2, $3, $4, $5, $6, $7) AS id';
const RECOMMENDATIONS_SQL =
  'SELECT service_name, consumer_group_id, profile, status, total_lag, avg_lag, messages_per_second,' +
  ' batch_efficiency, poll_interval_usage, error_rate, recommendation' +
  ' FROM v_consumer_performance_monitor WHERE recommendation IS NOT NULL ORDER BY service_name';
const SETTINGS_SQL = 'SELECT * FROM pipeline_consumer_configs WHERE service_name = $1';
const INSTANCE_SQL = 'SELECT record_consumer_instance($1, $2, $3, $4, $5, $6, $7, $8)';
const FORGET_SQL = 'SELECT forget_consumer_instance($1)';
/** How often a running consumer reports the config version it runs (record_consumer_instance). */
export const REPORT_INTERVAL_MS = 30_000;
/** How long a new client may take to join its group before the loader stops waiting for the broker's verdict. */
const JOIN_WAIT_MS = 30_000;
/** Notifications within this much of each other are followed once by an idle consumer (a burst: the newest). */
const IDLE_FOLLOW_MS = 200;

/** The part of a pg.Pool the loader uses. */
export interface PoolLike {
  // pg's own QueryResult rows are any[]; the loader reads them as Record<string, unknown>.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- public API: unknown[] would change what a caller of loader.pool sees
  connect(): Promise<{ query(text: string, values?: unknown[]): Promise<{ rows: any[] }>; release(error?: Error | boolean): void }>;
  /** pg.Pool's: the connection options its clients are built with (the listener's connection is built from them). */
  options?: object;
  /** pg.Pool's: the Client class it builds its connections with. */
  Client?: new (options: object) => ListenClientLike;
  /** pg.Pool's events: an idle connection that breaks is an 'error' the process dies of when no one listens. */
  on?: (event: 'error', listener: (error: Error) => void) => unknown;
  listenerCount?: (event: 'error') => number;
}

export interface Logger {
  warn(message: string): void;
  /** Each applied config version (console.log without it). */
  info?(message: string): void;
  /** A config version the new client refused (warn without it). */
  error?(message: string): void;
}

export type ConfigSource = 'database' | 'memory' | 'cache' | 'defaults';

/** One service's settings, readable like the guide's object: ``config.settings.max_poll_records``. */
export class ConsumerSettings {
  constructor(
    readonly serviceName: string,
    readonly consumerGroupId: string,
    readonly settings: Readonly<Settings>,
    readonly version: number | null,
    /** database, cache (local disk) or defaults */
    readonly source: ConfigSource,
    readonly loadedAt: number = Date.now() / 1000,
    readonly groupProtocol: string | null = null,
  ) {}

  get maxPollRecords(): number {
    return Number(this.settings.max_poll_records);
  }

  /** What `loomctl config show SERVICE --client kafkajs` prints for these settings. */
  kafkajs(): KafkajsOptions {
    return kafkajsOptions(this.consumerGroupId, this.settings);
  }
}

/** A cache file: the Python loader's format. */
interface CachedConfig {
  service_name: string;
  consumer_group_id: string;
  version: number | null;
  loaded_at: number;
  settings: Readonly<Settings>;
  group_protocol?: string | null;
}

/** What trackBatch records; set ``failed`` (or ``processed``) while handling the batch. */
export interface BatchMetrics {
  serviceName: string;
  batchSize: number;
  failed: number;
  processed: number | null;
  topicName: string | null;
  processingTimeMs: number;
}

export interface LoaderOptions {
  /** Where the last config read from the database is kept (default: LOOM_CONFIG_CACHE_DIR, else ~/.cache/loomctl/consumer-configs, as the Python loader). */
  cacheDir?: string;
  /** A config read from the database is re-read after this many seconds. */
  ttlSeconds?: number;
  /** With the database unreachable, try again after this many seconds. */
  retrySeconds?: number;
  connectTimeoutMs?: number;
  /** A librdkafka properties file for security (default: LOOM_KAFKA_CONFIG). */
  kafkaConfigPath?: string | null;
  /** A service without a row gets the defaults (as the Python loader) instead of a NOT_FOUND error. */
  defaultsWhenMissing?: boolean;
  logger?: Logger;
  /** Hear each new version at once (LISTEN loomctl_config on a connection of the loader's own); without it, changes arrive with the re-read after ttlSeconds. */
  listen?: boolean;
  /** Told each change a running consumer followed (or refused); what it throws is logged, never thrown into the consumer. */
  onConfigChange?: (change: ConfigChange) => void | Promise<void>;
  /** Reload classes the loader must not apply to running consumers: 'recreate' keeps the client whatever changes, 'live' keeps max_poll_records. */
  refuse?: readonly ReloadClass[];
}

export interface CreateConsumerOptions {
  /** Options over the table's, e.g. { consumer: { sessionTimeout: 30000 } } */
  overrides?: Partial<{ consumer: Record<string, unknown>; subscribe: Record<string, unknown>; run: Record<string, unknown> }>;
  /** Build the client from its config (default: new kafkajs.Kafka(config)). */
  kafkaFactory?: KafkaFactory;
  /** Record every slice's time, size and failures with record_processing_metrics(). */
  trackBatches?: boolean;
}

/** What the loader says about a consumer it made; the values are the current client's, which a config change may replace. */
export interface ConsumerInfo {
  serviceName: string;
  /** The config the consumer follows (the newest version it applied). */
  settings: ConsumerSettings;
  clientConfig: KafkaClientConfig;
  options: KafkajsOptions;
  /** The id it reports to consumer_instances with (record_consumer_instance). */
  instanceId: string;
  /** Versions a new client refused: never tried again. */
  refusedVersions: ReadonlySet<number>;
  /** How many clients the consumer has had (1 until a config change takes a new one). */
  clients: number;
}

/**
 * A KafkaJS consumer whose run() hands eachBatch at most max_poll_records messages. It stands for the current
 * client: when a config change takes a new one, every method (run, stop, disconnect, commitOffsets, on, ...) goes
 * to the new client, and listeners registered with on() move with it.
 */
export type OptimizedConsumer<C extends ConsumerLike = import('kafkajs').Consumer> = C & {
  readonly loomctl: ConsumerInfo;
};

const defaultLogger: Logger = {
  warn: (message) => console.warn(`@loomctl/consumer-config: ${message}`),
  info: (message) => console.log(`@loomctl/consumer-config: ${message}`),
  error: (message) => console.error(`@loomctl/consumer-config: ${message}`),
};

/** One KafkaJS client of a managed consumer. */
interface Generation {
  consumer: ConsumerLike;
  kafka: KafkaLike;
  clientConfig: KafkaClientConfig;
  table: KafkajsOptions;
  /** The config it was built with. */
  settings: ConsumerSettings;
  /** A new client takes over: batches still handed to this one are left for it (not resolved, fetched again). */
  draining: boolean;
  /** Batches (or messages) being handled now. */
  inFlight: number;
}

/** A consumer the loader made and follows: its current client, what it runs, what it refused. */
interface Managed {
  serviceName: string;
  topics: (string | RegExp)[];
  kafkaConfig: Record<string, unknown>;
  options: CreateConsumerOptions;
  instanceId: string;
  gen: Generation;
  clients: number;
  /** The config it follows (the newest version applied; the client may be older where the service refuses recreate). */
  settings: ConsumerSettings;
  /** The max_poll_records it cuts batches by. */
  limit: number;
  /** What the service passed to run(), while it runs. */
  runConfig: RunConfigLike | null;
  /** Listeners the service registered with on(): each new client gets them. */
  listeners: { event: string; listener: (event: unknown) => void; removers: Map<ConsumerLike, unknown> }[];
  refusedVersions: Set<number>;
  refusedVersion: number | null;
  /** A new client being built (null when none). */
  following: Promise<void> | null;
  idleTimer: NodeJS.Timeout | null;
  reportTimer: NodeJS.Timeout | null;
  reportWarned: boolean;
  /** The row is gone: said once. */
  missingWarned: boolean;
  closed: boolean;
  /** Ends a wait for a new client's join (the service disconnected). */
  wake: (() => void) | null;
  /** The loader is the consumer's own (createOptimizedConsumer): it closes with the consumer. */
  ownsLoader: boolean;
  /** What the service holds. */
  proxy: object | null;
}

export function defaultCacheDir(): string {
  const configured = process.env[ENV_CACHE_DIR];
  if (configured) return configured;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'loomctl', 'consumer-configs');
}

function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  const line = text.trim().split('\n')[0] || (error instanceof Error ? error.name : 'unknown error');
  // PostgreSQL's insufficient_privilege: name the role a service's database user needs
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === '42501' ? `${line} (a service's database user needs the role loomctl_service: \`loomctl db grant service USER\`)` : line;
}

export function checkServiceName(serviceName: unknown): string {
  if (typeof serviceName !== 'string' || !SERVICE_NAME.test(serviceName)) {
    throw new ConsumerConfigError(
      'BAD_INPUT',
      `invalid service name ${shown(serviceName)}: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 249 characters`,
    );
  }
  return serviceName;
}

function checkPool(pool: unknown): PoolLike {
  if (typeof pool !== 'object' || pool === null || typeof (pool as PoolLike).connect !== 'function') {
    throw new ConsumerConfigError('BAD_INPUT', `pool must be a pg Pool (new Pool({ connectionString })), not ${pool === null ? 'null' : typeof pool}`);
  }
  if ('connectionParameters' in pool && !('totalCount' in pool)) {
    // A pg Client: it has connect() too, but one that opens its single connection, not a pooled one.
    throw new ConsumerConfigError('BAD_INPUT', 'pool must be a pg Pool, not a Client: pass new Pool({ connectionString })');
  }
  return pool as PoolLike;
}

function checkTopics(topics: unknown): (string | RegExp)[] {
  if (!Array.isArray(topics) || topics.length === 0) {
    throw new ConsumerConfigError('BAD_INPUT', 'topics must be a non-empty array of topic names');
  }
  for (const topic of topics) {
    if (!(topic instanceof RegExp) && (typeof topic !== 'string' || topic.trim() === '')) {
      throw new ConsumerConfigError('BAD_INPUT', `invalid topic ${shown(topic)}: a topic is a non-empty name or a RegExp`);
    }
  }
  return topics as (string | RegExp)[];
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string, late?: (value: T) => void): Promise<T> {
  let timer: NodeJS.Timeout;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`${what} timed out after ${ms} ms`));
    }, ms);
  });
  promise.then((value) => timedOut && late?.(value), () => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** What KafkaJS consumers have beside ConsumerLike: their instrumentation events. */
interface EventfulConsumer {
  on(event: string, listener: (event: unknown) => void): unknown;
  events: { CRASH?: string };
}

/** Whether a KafkaJS error (or the error it wraps) is the broker's INVALID_SESSION_TIMEOUT. */
function refusedSessionTimeout(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { type?: unknown }).type === 'INVALID_SESSION_TIMEOUT') return true;
  }
  return false;
}

const BROKER_RESOURCE = 4; // KafkaJS ConfigResourceTypes.BROKER

/** The values of ``names`` in the config of one broker (the lowest id), asked through the client's admin. */
async function brokerConfigs(kafka: KafkaLike, names: readonly string[]): Promise<Record<string, string>> {
  if (typeof kafka.admin !== 'function') throw new Error('the Kafka client has no admin()');
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { brokers } = await admin.describeCluster();
    if (brokers.length === 0) throw new Error('the cluster names no broker');
    const id = Math.min(...brokers.map((b) => b.nodeId));
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false, resources: [{ type: BROKER_RESOURCE, name: String(id), configNames: [...names] }],
    });
    const found: Record<string, string> = {};
    for (const entry of resources[0]?.configEntries ?? []) {
      if (names.includes(entry.configName) && entry.configValue !== null) found[entry.configName] = entry.configValue;
    }
    return found;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Why a cache file cannot be used at all: one sentence that quotes nothing from the file. */
class Unusable extends Error {}

/**
 * The cache file's bytes, null when there is none; Unusable unless it is a regular file of at most
 * CACHE_MAX_BYTES. Opened without blocking (a FIFO without a writer would block the event loop for
 * good) and checked on the open descriptor, so what is read is what was checked.
 */
function readCacheFile(path: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | (fsConstants.O_NOCTTY ?? 0));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Unusable(`it cannot be opened (${(error as NodeJS.ErrnoException).code ?? reasonOf(error)})`);
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new Unusable('it is not a regular file');
    if (info.size > CACHE_MAX_BYTES) {
      throw new Unusable(`it holds ${info.size.toLocaleString('en-US')} bytes, more than the ${CACHE_MAX_BYTES.toLocaleString('en-US')} a cache file may`);
    }
    const buffer = Buffer.alloc(CACHE_MAX_BYTES + 1);
    let size = 0;
    while (size <= CACHE_MAX_BYTES) {
      const read = readSync(fd, buffer, size, CACHE_MAX_BYTES + 1 - size, null);
      if (read === 0) break;
      size += read;
    }
    if (size > CACHE_MAX_BYTES) throw new Unusable(`it holds more than the ${CACHE_MAX_BYTES.toLocaleString('en-US')} bytes a cache file may`);
    return buffer.subarray(0, size);
  } catch (error) {
    if (error instanceof Unusable) throw error;
    throw new Unusable(`it cannot be read (${(error as NodeJS.ErrnoException).code ?? reasonOf(error)})`);
  } finally {
    closeSync(fd);
  }
}

function parseCache(raw: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    throw new Unusable('it is not valid JSON');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Unusable(error instanceof RangeError ? 'its JSON nests too deeply' : 'it is not valid JSON');
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A group id the table and librdkafka accept (as loomctl's check_group_id, and not blank: librdkafka aborts on one). */
function isGroupId(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '' && [...value].length <= GROUP_ID_MAX &&
    ![...value].some((c) => c.charCodeAt(0) < 0x20 || c === '\x7f') && !LONE_SURROGATE.test(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeRange(field: (typeof FIELDS)[number]): string {
  if (field.choices) return `one of ${field.choices.join(', ')}`;
  if (field.kind === 'bool') return 'true or false';
  const unit = field.unit ? ` ${field.unit}` : '';
  return `${(field.minimum ?? 0).toLocaleString('en-US')}..${(field.maximum ?? 0).toLocaleString('en-US')}${unit}`;
}

/**
 * The settings to use from a cache file's ``settings``, and a note for each that took the table's
 * default: a field the file lacks takes its default silently, one the table does not know is
 * ignored, fields that break a rule together take their defaults.
 */
function checkedSettings(stored: Record<string, unknown>): { settings: Settings; notes: string[] } {
  const settings: Settings = { ...DEFAULTS };
  const notes: string[] = [];
  for (const field of FIELDS) {
    if (!Object.prototype.hasOwnProperty.call(stored, field.name)) continue;
    const raw = stored[field.name];
    if (fits(field, raw)) settings[field.name] = raw as Settings[string];
    else notes.push(`${field.name} (not ${describeRange(field)})`);
  }
  for (;;) {
    const broken = FIELD_TABLE.rules.filter((rule) => ruleHolds(rule, settings) === false);
    if (broken.length === 0) break;
    for (const rule of broken) {
      const reset = rule.fields.filter((name) => settings[name] !== DEFAULTS[name]);
      for (const name of reset) settings[name] = DEFAULTS[name] as Settings[string];
      notes.push(`${reset.join(' and ')} (${rule.reason})`);
    }
  }
  return { settings, notes };
}

/** The config a cache file's document gives and what of it took the defaults; Unusable when none. */
function cachedConfig(serviceName: string, document: unknown, path: string): { config: ConsumerSettings; problem: string | null } {
  if (!isObject(document)) throw new Unusable('it holds no JSON object');
  if (document.service_name !== serviceName) throw new Unusable('it belongs to another service');
  const group = document.consumer_group_id;
  if (!isGroupId(group)) throw new Unusable('its consumer_group_id is no valid consumer group id');
  if (!isObject(document.settings)) throw new Unusable('its settings are no JSON object');
  const { settings, notes } = checkedSettings(document.settings);
  const version = typeof document.version === 'number' && Number.isSafeInteger(document.version) ? document.version : null;
  const loadedAt = typeof document.loaded_at === 'number' && Number.isFinite(document.loaded_at) ? document.loaded_at : 0;
  const protocol = typeof document.group_protocol === 'string' ? document.group_protocol : null;
  const problem = notes.length ? `${path} holds values the field table refuses, which take their defaults: ${notes.join('; ')}` : null;
  return { config: new ConsumerSettings(serviceName, group, settings, version, 'cache', loadedAt, protocol), problem };
}

/** The guide's loader for Node services: settings from pipeline_consumer_configs, metrics back. */
export class ConsumerConfigLoader {
  readonly pool: PoolLike;
  readonly cacheDir: string;
  readonly ttlSeconds: number;
  readonly retrySeconds: number;
  readonly connectTimeoutMs: number;
  readonly kafkaConfigPath: string | null;
  readonly defaultsWhenMissing: boolean;
  readonly logger: Logger;
  readonly listen: boolean;
  readonly onConfigChange: ((change: ConfigChange) => void | Promise<void>) | null;
  readonly refuse: readonly ReloadClass[];
  private readonly memory = new Map<string, { config: ConsumerSettings; expires: number }>();
  private readonly degraded = new Set<string>();
  private listener: Listener | null = null;
  private closed = false;
  private readonly managed = new Set<Managed>();

  constructor(pool: unknown, options: LoaderOptions = {}) {
    this.pool = checkPool(pool);
    this.guardPool();
    this.cacheDir = options.cacheDir ?? defaultCacheDir();
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    this.retrySeconds = options.retrySeconds ?? DEFAULT_RETRY_SECONDS;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.kafkaConfigPath = options.kafkaConfigPath === undefined ? process.env[ENV_KAFKA_CONFIG] || null : options.kafkaConfigPath;
    this.defaultsWhenMissing = options.defaultsWhenMissing ?? false;
    this.logger = options.logger ?? defaultLogger;
    this.listen = options.listen ?? true;
    this.onConfigChange = options.onConfigChange ?? null;
    const refuse = options.refuse ?? [];
    const unknown: unknown[] = Array.isArray(refuse) ? (refuse as unknown[]).filter((c) => !REFUSABLE.includes(c as ReloadClass)) : [refuse];
    if (unknown.length > 0) {
      throw new ConsumerConfigError('BAD_INPUT', `refuse takes the reload classes a loader applies (live, recreate), not ${shown(unknown)}`);
    }
    this.refuse = [...refuse];
    for (const [name, value] of [['ttlSeconds', this.ttlSeconds], ['retrySeconds', this.retrySeconds], ['connectTimeoutMs', this.connectTimeoutMs]] as const) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new ConsumerConfigError('BAD_INPUT', `${name} must be a number of 0 or more, not ${shown(value)}`);
      }
    }
  }

  /**
   * pg's Pool emits 'error' when an idle connection breaks (the database restarted or went away), and a process
   * with no listener for it dies of it. A service that set none keeps running on what it has: the loader listens,
   * with one warning per outage (the next query that works ends it).
   */
  private guardPool(): void {
    const pool = this.pool;
    if (typeof pool.on !== 'function' || typeof pool.listenerCount !== 'function' || pool.listenerCount('error') > 0) return;
    pool.on('error', (error: Error) => {
      if (this.poolBroken) return;
      this.poolBroken = true;
      this.logger.warn(`the config database dropped an idle connection (${reasonOf(error)}): running on what the loader has`);
    });
  }

  private poolBroken = false;

  private async query(sql: string, values: unknown[]): Promise<Record<string, unknown>[]> {
    const client = await withTimeout(this.pool.connect(), this.connectTimeoutMs, 'connecting to the config database', (late) => late?.release?.());
    if (typeof client?.query !== 'function' || typeof client.release !== 'function') {
      // A pg Client's connect() resolves to nothing: it is no pool.
      throw new ConsumerConfigError('BAD_INPUT', 'pool.connect() must give a client with query() and release(): pass a pg Pool, not a Client');
    }
    let failed: Error | undefined;
    try {
      const { rows } = await withTimeout(client.query(sql, values), this.connectTimeoutMs * 6, 'the config query');
      this.poolBroken = false;
      return rows as Record<string, unknown>[];
    } catch (error) {
      failed = error as Error;
      throw error;
    } finally {
      client.release(failed);
    }
  }

  // -- cache --

  private fresh(serviceName: string): ConsumerSettings | null {
    const entry = this.memory.get(serviceName);
    return entry && performance.now() < entry.expires ? entry.config : null;
  }

  private remember(config: ConsumerSettings, seconds: number): ConsumerSettings {
    this.memory.set(config.serviceName, { config, expires: performance.now() + seconds * 1000 });
    return config;
  }

  /** The service's file in the cache folder (the Python loader's name and format), or null outside it. */
  cachePath(serviceName: string): string | null {
    const fileName = SERVICE_NAME.test(serviceName)
      ? `${serviceName}.json`
      : `_${createHash('sha256').update(serviceName, 'utf8').digest('hex')}.json`;
    const path = join(this.cacheDir, fileName);
    let folder: string;
    try {
      folder = realpathSync(this.cacheDir);
    } catch {
      folder = resolve(this.cacheDir);
    }
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      real = join(folder, fileName);
    }
    if (dirname(real) !== folder) {
      this.logger.warn(`not using the consumer config cache file ${path}: it lies outside ${this.cacheDir}`);
      return null;
    }
    return path;
  }

  private save(config: ConsumerSettings): void {
    const path = this.cachePath(config.serviceName);
    if (path === null) return;
    const document: CachedConfig = {
      service_name: config.serviceName, consumer_group_id: config.consumerGroupId, version: config.version,
      loaded_at: config.loadedAt, settings: config.settings,
    };
    try {
      mkdirSync(this.cacheDir, { recursive: true });
      const tmp = join(this.cacheDir, `.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
      writeFileSync(tmp, JSON.stringify(document));
      renameSync(tmp, path); // atomic: a reader never sees half a file
    } catch (error) {
      this.logger.warn(`cannot write the consumer config cache ${this.cacheDir}: ${reasonOf(error)}`);
    }
  }

  /** The cached config (null: no usable file) and what was wrong with the file (null: nothing); never throws, never blocks. */
  private loadCached(serviceName: string): { config: ConsumerSettings | null; problem: string | null } {
    const path = this.cachePath(serviceName);
    if (path === null) return { config: null, problem: null };
    try {
      const raw = readCacheFile(path);
      if (raw === null) return { config: null, problem: null };
      return cachedConfig(serviceName, parseCache(raw), path);
    } catch (error) {
      const reason = error instanceof Unusable ? error.message : `it cannot be read (${reasonOf(error)})`;
      return { config: null, problem: `the cached config ${path} is not used (${reason})` };
    }
  }

  private fromRow(serviceName: string, row: Record<string, unknown>): ConsumerSettings {
    const settings: Settings = {};
    for (const field of FIELDS) {
      const value = coerce(field, row[field.name]);
      // The table's CHECK constraints make this a schema the package does not know, not bad data.
      if (value === undefined) throw new Error(`pipeline_consumer_configs.${field.name} of ${serviceName} holds ${shown(row[field.name])}`);
      settings[field.name] = value;
    }
    return new ConsumerSettings(serviceName, String(row.consumer_group_id), settings, row.version == null ? null : Number(row.version),
      'database', Date.now() / 1000, typeof row.group_protocol === 'string' ? row.group_protocol : null);
  }

  private fallback(serviceName: string, error: unknown): ConsumerSettings {
    const stale = this.memory.get(serviceName)?.config;
    let config: ConsumerSettings | null = null;
    let problem: string | null = null;
    if (stale && stale.source !== 'defaults') config = stale;
    else ({ config, problem } = this.loadCached(serviceName));
    const warn = !this.degraded.has(serviceName);
    this.degraded.add(serviceName);
    if (config !== null) {
      if (warn) {
        this.logger.warn(`config database unavailable (${reasonOf(error)}): using the cached config of ${serviceName} ` +
          `(version ${config.version ?? '-'}) and retrying every ${this.retrySeconds}s${problem ? `; ${problem}` : ''}`);
      }
      if (config.source !== 'cache') config = new ConsumerSettings(config.serviceName, config.consumerGroupId, config.settings, config.version, 'cache', config.loadedAt, config.groupProtocol);
    } else {
      if (warn) {
        this.logger.warn(`config database unavailable (${reasonOf(error)}) and ${problem ?? `no cached config for ${serviceName}`}: ` +
          `using the defaults, retrying every ${this.retrySeconds}s`);
      }
      config = new ConsumerSettings(serviceName, serviceName, { ...DEFAULTS }, null, 'defaults');
    }
    return this.remember(config, this.retrySeconds);
  }

  /** The service's settings: from memory within the TTL, else the database, else the disk cache, else the defaults. */
  async loadConfig(serviceName: string): Promise<ConsumerSettings> {
    checkServiceName(serviceName);
    this.startListening();
    const fresh = this.fresh(serviceName);
    if (fresh !== null) return fresh;
    let rows: Record<string, unknown>[];
    try {
      rows = await this.query(SETTINGS_SQL, [serviceName]);
    } catch (error) {
      if (error instanceof ConsumerConfigError) throw error;
      return this.fallback(serviceName, error);
    }
    if (this.degraded.delete(serviceName)) this.logger.info?.(`config database reachable again: ${serviceName} reads its config from it`);
    const row = rows[0];
    if (row === undefined) {
      if (!this.defaultsWhenMissing) {
        throw new ConsumerConfigError('NOT_FOUND',
          `no consumer config for ${shown(serviceName)} in pipeline_consumer_configs (create it with \`loomctl config set ${serviceName} --create\`)`);
      }
      this.logger.warn(`no consumer config for ${serviceName} in pipeline_consumer_configs: using the defaults`);
      return this.remember(new ConsumerSettings(serviceName, serviceName, { ...DEFAULTS }, null, 'defaults'), this.retrySeconds);
    }
    const config = this.fromRow(serviceName, row);
    this.save(config);
    return this.remember(config, this.ttlSeconds);
  }

  /** The client config: security from the properties file, the caller's config, then the table's request timeout. */
  clientConfig(kafkaConfig: Record<string, unknown>, options: KafkajsOptions): KafkaClientConfig {
    if (typeof kafkaConfig !== 'object' || kafkaConfig === null || Array.isArray(kafkaConfig)) {
      throw new ConsumerConfigError('BAD_INPUT', 'the Kafka config must be an object such as { brokers: [\'kafka:9092\'] }');
    }
    const security = this.kafkaConfigPath ? securityConfig(readPropertiesFile(this.kafkaConfigPath)) : {};
    const fromEnv = process.env[ENV_BOOTSTRAP_SERVERS]?.split(',').map((s) => s.trim()).filter(Boolean);
    const brokers = kafkaConfig.brokers ?? (fromEnv?.length ? fromEnv : undefined) ?? security.brokers;
    if (brokers === undefined) {
      throw new ConsumerConfigError('BAD_INPUT',
        `no Kafka brokers: pass { brokers: [...] }, set ${ENV_BOOTSTRAP_SERVERS} or put bootstrap.servers in the ${ENV_KAFKA_CONFIG} file`);
    }
    if (typeof brokers !== 'function' && (!Array.isArray(brokers) || brokers.length === 0 || brokers.some((b) => typeof b !== 'string' || !b.trim()))) {
      throw new ConsumerConfigError('BAD_INPUT', `brokers must be a non-empty array of host:port strings, not ${shown(brokers)}`);
    }
    // KafkaJS takes requestTimeout on the client, not on consumer(): moved there, the caller's own value first.
    const config: KafkaClientConfig = { ...security, requestTimeout: options.consumer.requestTimeout, ...kafkaConfig, brokers: brokers as string[] };
    if (config.clientId === undefined) config.clientId = options.consumer.groupId;
    return config;
  }

  /**
   * A connected KafkaJS consumer with the service's settings, subscribed to ``topics``. The loader follows the
   * service's config while it runs (see live.ts): the object returned stands for the current client.
   */
  async createConsumer<C extends ConsumerLike = import('kafkajs').Consumer>(
    serviceName: string,
    topics: (string | RegExp)[],
    kafkaConfig: Record<string, unknown> = {},
    options: CreateConsumerOptions = {},
  ): Promise<OptimizedConsumer<C>> {
    checkServiceName(serviceName);
    checkTopics(topics);
    const settings = await this.loadConfig(serviceName);
    const warning = unhonoured(settings.settings, settings.groupProtocol);
    const gen = await this.build(serviceName, topics, kafkaConfig, options, settings, []);
    if (warning) this.logger.warn(`${serviceName}: ${warning}`);
    this.watchRefusal(gen.consumer, gen.kafka, serviceName, settings);
    const m: Managed = {
      serviceName, topics: [...topics], kafkaConfig, options, instanceId: randomUUID(), gen, clients: 1, settings,
      limit: settings.maxPollRecords, runConfig: null, listeners: [], refusedVersions: new Set(), refusedVersion: null,
      following: null, idleTimer: null, reportTimer: null, reportWarned: false, missingWarned: false, closed: false, wake: null, ownsLoader: false,
      proxy: null,
    };
    this.managed.add(m);
    void this.report(m);
    m.reportTimer = setInterval(() => void this.report(m), REPORT_INTERVAL_MS);
    m.reportTimer.unref();
    m.proxy = this.standIn(m);
    return m.proxy as OptimizedConsumer<C>;
  }

  /** A new KafkaJS consumer with ``settings``, the service's listeners on it, connected and subscribed (not run). */
  private async build(
    serviceName: string, topics: (string | RegExp)[], kafkaConfig: Record<string, unknown>, options: CreateConsumerOptions,
    settings: ConsumerSettings, listeners: Managed['listeners'],
  ): Promise<Generation> {
    if ((settings.groupProtocol ?? settings.settings.group_protocol) === 'share') {
      throw new ConsumerConfigError('UNSUPPORTED',
        `${serviceName} is a share group (group_protocol=share): KafkaJS has no share consumer (KIP-932), and a KafkaJS ` +
        "consumer cannot join a share group; build it with confluent-kafka's ShareConsumer (loomctl.loader) or Java's KafkaShareConsumer");
    }
    const table = settings.kafkajs();
    const clientConfig = this.clientConfig(kafkaConfig, table);
    let kafka: KafkaLike;
    const { requestTimeout: _moved, partitionAssigners: assignorNames, ...consumerOptions } = table.consumer;
    void _moved;
    const consumerConfig: Record<string, unknown> & { groupId: string } = { ...consumerOptions, groupId: table.consumer.groupId };
    if (options.kafkaFactory) {
      kafka = options.kafkaFactory(clientConfig);
    } else {
      const kafkajs = require('kafkajs') as typeof import('kafkajs');
      kafka = new kafkajs.Kafka(clientConfig);
      // KafkaJS ships only round robin; unhonoured() has warned when the table names another.
      if (Array.isArray(assignorNames)) consumerConfig.partitionAssigners = [kafkajs.PartitionAssigners.roundRobin];
    }
    Object.assign(consumerConfig, options.overrides?.consumer);

    const consumer = kafka.consumer(consumerConfig);
    const eventful = consumer as Partial<EventfulConsumer>;
    for (const entry of listeners) {
      if (typeof eventful.on === 'function') entry.removers.set(consumer, eventful.on.call(consumer, entry.event, entry.listener));
    }
    await consumer.connect();
    try {
      await consumer.subscribe({ ...table.subscribe, ...options.overrides?.subscribe, topics });
    } catch (error) {
      await consumer.disconnect().catch(() => undefined);
      throw error;
    }
    return { consumer, kafka, clientConfig, table, settings, draining: false, inFlight: 0 };
  }

  /** What the service holds: the current client's methods, with run, stop, disconnect and on the loader's. */
  private standIn(m: Managed): object {
    const own: Record<string, unknown> = {
      run: (config: RunConfigLike = {}) => {
        m.runConfig = config;
        return m.gen.consumer.run(this.runConfigOf(m, m.gen, config));
      },
      stop: async () => {
        await m.following;
        m.runConfig = null;
        const eventful = m.gen.consumer as ConsumerLike & { stop?: () => Promise<void> };
        if (typeof eventful.stop === 'function') await eventful.stop();
      },
      disconnect: async () => {
        m.closed = true;
        m.wake?.();
        await m.following;
        this.forget(m);
        try {
          await m.gen.consumer.disconnect();
        } finally {
          await this.forgetInstance(m);
          if (m.ownsLoader) await this.close();
        }
      },
      on: (event: string, listener: (event: unknown) => void) => {
        const entry = { event, listener, removers: new Map<ConsumerLike, unknown>() };
        const current = m.gen.consumer as Partial<EventfulConsumer>;
        if (typeof current.on !== 'function') throw new TypeError('the consumer has no on()');
        entry.removers.set(m.gen.consumer, current.on.call(m.gen.consumer, event, listener));
        m.listeners.push(entry);
        return () => {
          m.listeners = m.listeners.filter((e) => e !== entry);
          for (const remove of entry.removers.values()) if (typeof remove === 'function') (remove as () => void)();
        };
      },
    };
    const info = (): ConsumerInfo => ({
      serviceName: m.serviceName, settings: m.settings, clientConfig: m.gen.clientConfig, options: m.gen.table,
      instanceId: m.instanceId, refusedVersions: m.refusedVersions, clients: m.clients,
    });
    return new Proxy({}, {
      get: (_, property) => {
        if (property === 'loomctl') return info();
        if (typeof property === 'string' && Object.prototype.hasOwnProperty.call(own, property)) return own[property];
        const current = m.gen.consumer;
        const value: unknown = Reflect.get(current, property);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(current) : value;
      },
      has: (_, property) => property === 'loomctl' || Reflect.has(m.gen.consumer, property),
      set: (_, property, value) => Reflect.set(m.gen.consumer, property, value),
      ownKeys: () => Reflect.ownKeys(m.gen.consumer),
      getOwnPropertyDescriptor: (_, property) => {
        const found = Reflect.getOwnPropertyDescriptor(m.gen.consumer, property);
        return found ? { ...found, configurable: true } : undefined;
      },
    });
  }

  /** The service's run config for ``gen``: the table's run options under it, eachBatch cut by max_poll_records, both handlers behind the safe point. */
  private runConfigOf(m: Managed, gen: Generation, config: RunConfigLike): RunConfigLike {
    const merged = { ...gen.table.run, ...m.options.overrides?.run, ...config } as RunConfigLike;
    if (merged.eachBatch) {
      const limited = limitBatches(merged.eachBatch, {
        limit: () => Promise.resolve(m.limit),
        // Between slices too: what was handed out is resolved (KafkaJS commits it once the batch returns).
        next: () => this.atSafePoint(m, gen),
        autoResolve: merged.eachBatchAutoResolve ?? true,
        autoCommit: merged.autoCommit ?? true,
        around: m.options.trackBatches
          ? (payload, handle) => this.trackBatch(m.serviceName, payload.batch, () => handle())
          : undefined,
      });
      merged.eachBatch = async (payload: EachBatchPayloadLike) => {
        // The safe point: the batches before this one are handled and resolved (KafkaJS commits them after each
        // batch). A batch left here is not resolved: the new client fetches it again.
        if (!(await this.atSafePoint(m, gen))) return;
        gen.inFlight++;
        try {
          await limited(payload);
        } finally {
          gen.inFlight--;
        }
      };
      merged.eachBatchAutoResolve = false;
    } else if (merged.eachMessage) {
      const handle = merged.eachMessage as (payload: unknown) => Promise<void>;
      merged.eachMessage = async (payload: unknown) => {
        // KafkaJS resolves a message once eachMessage returns: this one is handled whatever, and the client being
        // stopped, it is the last one before the new client takes over.
        await this.atSafePoint(m, gen);
        gen.inFlight++;
        try {
          await handle(payload);
        } finally {
          gen.inFlight--;
        }
      };
    }
    return merged;
  }

  /** Whether ``gen`` may handle the next batch; false when a new client takes over (the one ``follow`` starts). */
  private async atSafePoint(m: Managed, gen: Generation): Promise<boolean> {
    if (gen.draining || m.gen !== gen) return false;
    let config: ConsumerSettings;
    try {
      config = await this.loadConfig(m.serviceName);
    } catch (error) {
      // The row deleted while the service runs: keep consuming with what it had (said once).
      if (!m.missingWarned) this.logger.warn(`${m.serviceName}: keeping max_poll_records=${m.limit}: ${reasonOf(error)}`);
      m.missingWarned = true;
      return !gen.draining && m.gen === gen;
    }
    m.missingWarned = false;
    if (gen.draining || m.gen !== gen) return false;
    return this.follow(m, gen, config) !== 'recreating';
  }

  /**
   * Bring ``m`` to ``config`` if that is a newer version from the database (a cached config or the defaults are
   * never followed): live settings at once, recreate ones by a new client, started here and built outside the
   * handler. Synchronous up to that start, so that two batches never both start one.
   */
  private follow(m: Managed, gen: Generation, config: ConsumerSettings): 'same' | 'applied' | 'recreating' {
    if (config.source !== 'database' || m.closed) return 'same';
    if (m.following !== null || gen.draining) return 'recreating';
    const running = m.settings;
    if (config.version === running.version || (config.version !== null && m.refusedVersions.has(config.version))) return 'same';
    const change = changeBetween(running, config);
    if (change === null) {
      m.settings = config;
      return 'same';
    }
    change.refusedClasses = [...new Set(Object.values(change.classes))].filter((c) => this.refuse.includes(c)).sort();
    if (change.needsClient) {
      gen.draining = true;
      m.following = this.recreate(m, gen, config, change).finally(() => {
        m.following = null;
      });
      return 'recreating';
    }
    this.applied(m, running, config, change);
    return 'applied';
  }

  /** The change is in effect (or refused): the running config, the log line, the report, the service's callback. */
  private applied(m: Managed, running: ConsumerSettings, config: ConsumerSettings, change: ConfigChange): void {
    if (change.applied) {
      m.settings = config;
      if (!change.refusedClasses.includes('live')) m.limit = config.maxPollRecords;
      const line = `${m.serviceName}: config version ${running.version ?? '-'} -> ${config.version ?? '-'} applied: ${change.describe()}`;
      if (this.logger.info) this.logger.info(line);
      else console.log(line);
    } else {
      if (config.version !== null) {
        m.refusedVersions.add(config.version);
        m.refusedVersion = Math.max(config.version, m.refusedVersion ?? config.version);
      }
      const line = `${m.serviceName}: config version ${config.version ?? '-'} refused by the new client (${change.error ?? 'unknown error'}): ` +
        `back on version ${running.version ?? '-'}: ${change.describe()}`;
      (this.logger.error ?? this.logger.warn).call(this.logger, line);
    }
    void this.report(m);
    if (this.onConfigChange !== null) {
      try {
        Promise.resolve(this.onConfigChange(change)).catch((error: unknown) => {
          this.logger.warn(`${m.serviceName}: onConfigChange failed: ${reasonOf(error)}`);
        });
      } catch (error) {
        this.logger.warn(`${m.serviceName}: onConfigChange failed: ${reasonOf(error)}`);
      }
    }
  }

  /**
   * Stop the current client (the batches handled are committed by KafkaJS after each batch with autoCommit; a
   * service that commits itself has done so; it leaves the group cleanly), then build, run and see join the new
   * one. A client that is refused (built, connected, subscribed or joined: the broker refuses a session timeout)
   * is replaced by one with the last good settings, and the version is not tried again.
   */
  private async recreate(m: Managed, old: Generation, config: ConsumerSettings, change: ConfigChange): Promise<void> {
    const started = performance.now();
    const running = m.settings;
    await old.consumer.disconnect().catch((error: unknown) => {
      this.logger.warn(`${m.serviceName}: the old client did not disconnect cleanly: ${reasonOf(error)}`);
    });
    if (m.closed) return;
    try {
      await this.startClient(m, config);
    } catch (error) {
      change.applied = false;
      change.error = reasonOf(error);
      try {
        await this.startClient(m, old.settings);
      } catch (again) {
        this.logger.warn(`${m.serviceName}: the client with the last good settings (version ${old.settings.version ?? '-'}) failed too: ${reasonOf(again)}`);
      }
    }
    change.seconds = (performance.now() - started) / 1000;
    if (!m.closed) this.applied(m, running, config, change);
  }

  /** Build, run (if the service runs) and see join a new client for ``m``; it becomes m's current one. */
  private async startClient(m: Managed, settings: ConsumerSettings): Promise<void> {
    const gen = await this.build(m.serviceName, m.topics, m.kafkaConfig, m.options, settings, m.listeners);
    const eventful = gen.consumer as Partial<EventfulConsumer> & { events?: { GROUP_JOIN?: string } };
    const join = eventful.events?.GROUP_JOIN;
    const crash = eventful.events?.CRASH;
    let verdict: Promise<unknown> | null = null;
    const removers: unknown[] = [];
    if (m.runConfig !== null && typeof eventful.on === 'function' && typeof join === 'string' && typeof crash === 'string') {
      verdict = new Promise<unknown>((resolve) => {
        let timer: NodeJS.Timeout | null = setTimeout(() => resolve(null), JOIN_WAIT_MS);
        const done = (value: unknown) => {
          if (timer !== null) clearTimeout(timer);
          timer = null;
          m.wake = null;
          resolve(value);
        };
        m.wake = () => done(null);
        removers.push(eventful.on?.call(gen.consumer, join, () => done(null)));
        removers.push(eventful.on?.call(gen.consumer, crash, (event: unknown) => {
          const payload = (event as { payload?: { error?: unknown; restart?: boolean } } | undefined)?.payload;
          if (payload?.restart === false) done(payload.error ?? new Error('the client crashed'));
        }));
      });
    }
    try {
      if (m.runConfig !== null) await gen.consumer.run(this.runConfigOf(m, gen, m.runConfig));
      const refused = verdict === null ? null : await verdict;
      if (refused !== null) throw refused instanceof Error ? refused : new Error(reasonOf(refused));
    } catch (error) {
      await gen.consumer.disconnect().catch(() => undefined);
      throw error;
    } finally {
      for (const remove of removers) if (typeof remove === 'function') (remove as () => void)();
    }
    m.gen = gen;
    m.clients++;
    this.watchRefusal(gen.consumer, gen.kafka, m.serviceName, settings);
    if (m.closed) await gen.consumer.disconnect().catch(() => undefined);
  }

  /** A new version was notified: the next batch reads it (whatever the TTL); an idle consumer follows it now. */
  private heard(serviceName: string, version: number | null): void {
    const entry = this.memory.get(serviceName);
    if (entry !== undefined && entry.config.version !== version) this.memory.delete(serviceName);
    for (const m of this.managed) {
      if (m.serviceName !== serviceName || m.runConfig === null || m.idleTimer !== null) continue;
      // Batches follow the change at their safe point; a consumer that gets none follows it here.
      m.idleTimer = setTimeout(() => {
        m.idleTimer = null;
        const gen = m.gen;
        if (gen.inFlight > 0 || m.following !== null || m.closed) return;
        this.loadConfig(serviceName).then((config) => {
          if (gen.inFlight === 0 && m.gen === gen) this.follow(m, gen, config);
        }, () => undefined);
      }, IDLE_FOLLOW_MS);
      m.idleTimer.unref();
    }
  }

  /** The listener was away: whatever was notified meanwhile is read again. */
  private resumed(): void {
    for (const [name, entry] of this.memory) if (entry.config.source === 'database') this.memory.delete(name);
  }

  private startListening(): void {
    if (!this.listen || this.listener !== null || this.closed) return;
    const { options, Client } = this.pool;
    if (typeof Client !== 'function' || typeof options !== 'object' || options === null) return; // not a pg Pool: the re-read only
    this.listener = new Listener(
      () => new Client({ ...options }),
      (service, version) => this.heard(service, version),
      () => this.resumed(),
      (message) => this.logger.warn(message),
      `the re-read every ${this.ttlSeconds}s`,
    );
  }

  /** Whether the loader hears changes as they are committed (LISTEN loomctl_config is in effect). */
  get listening(): boolean {
    return this.listener?.listening ?? false;
  }

  /** Stop listening for config changes (the loader's consumers are the service's to disconnect). */
  async close(): Promise<void> {
    this.closed = true;
    const listener = this.listener;
    this.listener = null;
    for (const m of this.managed) {
      if (m.idleTimer !== null) clearTimeout(m.idleTimer);
      m.idleTimer = null;
    }
    if (listener !== null) await listener.stop();
  }

  /** Alias of close(). */
  end(): Promise<void> {
    return this.close();
  }

  /** The loader is ``consumer``'s alone (createOptimizedConsumer): it stops listening when the consumer disconnects. */
  own(consumer: object): void {
    for (const m of this.managed) if (m.proxy === consumer) m.ownsLoader = true;
  }

  private forget(m: Managed): void {
    this.managed.delete(m);
    if (m.reportTimer !== null) clearInterval(m.reportTimer);
    if (m.idleTimer !== null) clearTimeout(m.idleTimer);
    m.reportTimer = m.idleTimer = null;
  }

  /** The service disconnected ``m``: it runs no version any more (forget_consumer_instance); a failure is one warning. */
  private async forgetInstance(m: Managed): Promise<void> {
    try {
      await this.query(FORGET_SQL, [m.instanceId]);
    } catch (error) {
      this.logger.warn(`${m.serviceName}: cannot say the consumer stopped: ${reasonOf(error)}`);
    }
  }

  /** record_consumer_instance: the version ``m`` runs; a failure is one warning (until a report succeeds), never thrown. */
  private async report(m: Managed): Promise<void> {
    const version = m.settings.source === 'database' ? m.settings.version : null;
    try {
      await this.query(INSTANCE_SQL, [m.instanceId, m.serviceName, version, 'node', m.settings.consumerGroupId, hostname(), process.pid, m.refusedVersion]);
      m.reportWarned = false;
    } catch (error) {
      if (!m.reportWarned) this.logger.warn(`${m.serviceName}: cannot report the config version it runs: ${reasonOf(error)}`);
      m.reportWarned = true;
    }
  }

  /**
   * KafkaJS stops a consumer for good when the broker refuses its session timeout (outside
   * group.min/max.session.timeout.ms: not retriable), and says so only through its own logger and
   * the CRASH event: the loader listens and names the broker's bounds, once per consumer.
   */
  private watchRefusal(consumer: ConsumerLike, kafka: KafkaLike, serviceName: string, settings: ConsumerSettings): void {
    const eventful = consumer as Partial<EventfulConsumer>;
    const crash = eventful.events?.CRASH;
    if (typeof eventful.on !== 'function' || typeof crash !== 'string') return;
    let reported = false;
    eventful.on.call(consumer, crash, (event: unknown) => {
      if (reported || !refusedSessionTimeout((event as { payload?: { error?: unknown } } | undefined)?.payload?.error)) return;
      reported = true;
      void this.reportRefusal(kafka, serviceName, settings);
    });
  }

  private async reportRefusal(kafka: KafkaLike, serviceName: string, settings: ConsumerSettings): Promise<void> {
    const [low, high] = SESSION_TIMEOUT_BOUNDS;
    let bounds: string;
    try {
      const found = await withTimeout(brokerConfigs(kafka, SESSION_TIMEOUT_BOUNDS), BOUNDS_TIMEOUT_MS, 'reading the broker\'s config');
      bounds = `(${found[low] ?? '?'}..${found[high] ?? '?'})`;
    } catch (error) {
      bounds = `(not read: ${reasonOf(error)})`;
    }
    this.logger.warn(`the broker refuses every join of ${serviceName} to consumer group ${settings.consumerGroupId}: ` +
      `session_timeout_ms=${String(settings.settings.session_timeout_ms)} is outside the broker's group.min/max.session.timeout.ms ${bounds}; ` +
      `KafkaJS has stopped the consumer (the broker's refusal is not retriable): set session_timeout_ms within the broker's bounds ` +
      `(loomctl config set ${serviceName} session_timeout_ms=...) and create the consumer again`);
  }

  /** Rows of v_consumer_performance_monitor that carry a recommendation. */
  async getProcessingRecommendations(): Promise<Record<string, unknown>[]> {
    return this.query(RECOMMENDATIONS_SQL, []);
  }

  /** Store one batch's metrics; a database outage is logged, never thrown into the service. */
  async recordProcessingMetrics(
    serviceName: string, batchSize: number, processingTimeMs: number, messagesFailed = 0,
    messagesProcessed: number | null = null, topicName: string | null = null,
  ): Promise<number | null> {
    checkServiceName(serviceName);
    for (const [name, value] of [['batchSize', batchSize], ['messagesFailed', messagesFailed]] as const) {
      if (!Number.isSafeInteger(value) || value < 0) throw new ConsumerConfigError('BAD_INPUT', `${name} must be a whole number of 0 or more, not ${shown(value)}`);
    }
    if (typeof processingTimeMs !== 'number' || !Number.isFinite(processingTimeMs) || processingTimeMs < 0) {
      throw new ConsumerConfigError('BAD_INPUT', `processingTimeMs must be a number of 0 or more, not ${shown(processingTimeMs)}`);
    }
    const config = this.fresh(serviceName) ?? this.memory.get(serviceName)?.config;
    const group = config && config.source !== 'defaults' ? config.consumerGroupId : null;
    const processed = messagesProcessed ?? Math.max(batchSize - messagesFailed, 0);
    try {
      const rows = await this.query(METRICS_SQL, [serviceName, batchSize, processed, processingTimeMs, messagesFailed, group, topicName]);
      return rows[0]?.id == null ? null : Number(rows[0].id);
    } catch (error) {
      this.logger.warn(`cannot record processing metrics of ${serviceName}: ${reasonOf(error)}`);
      return null;
    }
  }

  /**
   * Time ``handle`` and record the batch (its size, time and failures); an exception counts the
   * whole batch as failed and is thrown on. ``batch`` is a KafkaJS batch or an array of messages.
   */
  async trackBatch<T>(serviceName: string, batch: BatchLike | MessageLike[], handle: (metrics: BatchMetrics) => Promise<T>): Promise<T> {
    const messages = Array.isArray(batch) ? batch : batch.messages;
    const metrics: BatchMetrics = {
      serviceName, batchSize: messages.length, failed: 0, processed: null,
      topicName: Array.isArray(batch) ? null : batch.topic, processingTimeMs: 0,
    };
    const started = performance.now();
    try {
      return await handle(metrics);
    } catch (error) {
      metrics.failed = messages.length;
      metrics.processed = 0;
      throw error;
    } finally {
      metrics.processingTimeMs = performance.now() - started;
      await this.recordProcessingMetrics(serviceName, metrics.batchSize, metrics.processingTimeMs, metrics.failed, metrics.processed, metrics.topicName);
    }
  }
}

/** The guide's call: a connected, subscribed KafkaJS consumer whose batches hold at most max_poll_records messages. */
export async function createOptimizedConsumer<C extends ConsumerLike = import('kafkajs').Consumer>(
  pool: unknown,
  kafkaConfig: Record<string, unknown>,
  serviceName: string,
  topics: (string | RegExp)[],
  options: LoaderOptions & CreateConsumerOptions = {},
): Promise<OptimizedConsumer<C>> {
  const loader = new ConsumerConfigLoader(pool, options);
  const consumer = await loader.createConsumer<C>(serviceName, topics, kafkaConfig, options);
  loader.own(consumer);
  return consumer;
}

export type { EachBatchPayloadLike };
