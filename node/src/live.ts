/**
 * Configuration changes that reach running services: what the loader does when a service's config gets a new
 * version while its consumer runs (the Node twin of loomctl.live_config).
 *
 * - **Hearing it.** Each new version is notified on the channel {@link CHANNEL} at commit (migration 0014's
 *   trigger, for loomctl's changes and raw SQL alike). A {@link Listener} LISTENs on a connection of its own and
 *   the loader drops the service's config from memory, so the next batch reads it. Where LISTEN cannot work (a
 *   pooler in transaction mode, a read replica) the loader's re-read every ``ttlSeconds`` is the version poll.
 * - **Applying it** by each changed setting's reload class (fields.json), at a safe point: between batches.
 *   ``live`` (max_poll_records) takes effect with the next batch; ``recreate`` needs a new KafkaJS consumer (the
 *   processed offsets committed, a clean leave, the same topics and handler); a consumer that refuses the new
 *   options is built again with the last good ones and the version is not tried again. ``broker`` settings are the
 *   broker's, pushed with `loomctl config push`.
 * - **Saying it.** One log line per applied version, naming each setting, its old and new value and how it was
 *   applied; the service's ``onConfigChange`` gets a {@link ConfigChange}; classes it ``refuse``s are left, and said.
 */
import { DEFAULTS, FIELDS, FIELDS_BY_NAME, FieldSpec, SettingValue, Settings } from './fields';

export const CHANNEL = 'loomctl_config';
/** The first wait before a listener connects again after losing its connection; it doubles up to {@link RECONNECT_MAX_MS}. */
export const RECONNECT_MS = 1000;
export const RECONNECT_MAX_MS = 30_000;

export type ReloadClass = FieldSpec['reload']['classic'];
/** The classes a service may refuse: the ones the loader applies itself. */
export const REFUSABLE: readonly ReloadClass[] = ['live', 'recreate'];

const HOW: Readonly<Record<ReloadClass, string>> = {
  live: 'at the next poll',
  recreate: 'by a new client',
  broker: 'on the broker (loomctl config push)',
  unused: 'not used by this group type',
};

/** The part of a running config a change is computed from (a ConsumerSettings). */
export interface VersionedSettings {
  serviceName: string;
  consumerGroupId: string;
  settings: Readonly<Settings>;
  version: number | null;
}

/**
 * How a change of ``name`` reaches a KafkaJS consumer with these (the newest) settings: fields.json's class for
 * their group protocol; a new group id or group protocol is a new client; a setting KafkaJS has no option for
 * (reconnect backoffs) is not used, a new client would change nothing.
 */
export function reloadClass(name: string, settings: Readonly<Settings>): ReloadClass {
  if (name === 'consumer_group_id' || name === 'group_protocol') return 'recreate';
  const field = FIELDS_BY_NAME.get(name);
  if (field === undefined) return 'unused';
  const protocol = String(settings.group_protocol ?? DEFAULTS.group_protocol);
  const cls = field.reload[protocol as keyof FieldSpec['reload']] ?? field.reload.classic;
  if (cls === 'recreate' && field.kafkajs === null) return 'unused';
  return cls;
}

/** What changed between the config a consumer runs and a newer version, and what the loader did with it. */
export class ConfigChange {
  /** False when the new client refused the settings and the consumer runs on the old ones. */
  applied = true;
  /** Classes the service refuses (``refuse``): their settings were left as they were. */
  refusedClasses: ReloadClass[] = [];
  /** Why the new client was refused (null when it was not). */
  error: string | null = null;
  /** How long the new client took (0 without one). */
  seconds = 0;

  constructor(
    readonly serviceName: string,
    readonly oldVersion: number | null,
    readonly newVersion: number | null,
    /** Each changed setting (and consumer_group_id): [old, new]. */
    readonly changes: Readonly<Record<string, readonly [SettingValue | undefined, SettingValue | undefined]>>,
    /** Each changed setting's reload class. */
    readonly classes: Readonly<Record<string, ReloadClass>>,
  ) {}

  fieldsOf(cls: ReloadClass): string[] {
    return Object.keys(this.classes).filter((name) => this.classes[name] === cls);
  }

  /** Whether the change takes a new client (a recreate setting the service does not refuse). */
  get needsClient(): boolean {
    return Object.values(this.classes).includes('recreate') && !this.refusedClasses.includes('recreate');
  }

  /** ``max_poll_records 500 -> 5 at the next poll; fetch_max_bytes 52428800 -> 2000000 by a new client (0.4 s)`` */
  describe(): string {
    return Object.entries(this.changes).map(([name, [old, now]]) => {
      const cls = this.classes[name] ?? 'unused';
      let how = HOW[cls];
      if (this.refusedClasses.includes(cls)) how = 'not applied: the service refuses this class';
      else if (cls === 'recreate' && !this.applied) how = 'refused by the client';
      else if (cls === 'recreate') how += ` (${this.seconds.toFixed(1)} s)`;
      else if (cls === 'unused' && FIELDS_BY_NAME.get(name)?.kafkajs === null && name !== 'max_poll_records') how = 'not used by KafkaJS';
      return `${name} ${String(old)} -> ${String(now)} ${how}`;
    }).join('; ');
  }
}

/** The change from the config a consumer runs to the newest one, classed for the newest settings; null when the version and the settings are the same. */
export function changeBetween(running: VersionedSettings, newest: VersionedSettings): ConfigChange | null {
  const changes: Record<string, readonly [SettingValue | undefined, SettingValue | undefined]> = {};
  if (running.consumerGroupId !== newest.consumerGroupId) changes.consumer_group_id = [running.consumerGroupId, newest.consumerGroupId];
  for (const field of FIELDS) {
    const old = running.settings[field.name];
    const now = newest.settings[field.name];
    if (old !== now) changes[field.name] = [old, now];
  }
  if (Object.keys(changes).length === 0 && running.version === newest.version) return null;
  const settings = { ...DEFAULTS, ...newest.settings };
  const classes = Object.fromEntries(Object.keys(changes).map((name) => [name, reloadClass(name, settings)]));
  return new ConfigChange(newest.serviceName, running.version, newest.version, changes, classes);
}

/** The part of a pg Client a listener uses. */
export interface ListenClientLike {
  connect(): Promise<unknown>;
  query(text: string): Promise<unknown>;
  end(): Promise<unknown>;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
  /** pg's: the connection does not keep the process alive (ref: it does again, while it closes). */
  unref?(): void;
  ref?(): void;
}

/** A notification's service and version, or null for a payload that is not one. */
export function parseNotification(payload: string | undefined): { service: string; version: number | null } | null {
  let note: unknown;
  try {
    note = JSON.parse(payload ?? '');
  } catch {
    return null;
  }
  if (typeof note !== 'object' || note === null) return null;
  const { service, version } = note as { service?: unknown; version?: unknown };
  if (typeof service !== 'string') return null;
  if (version !== null && version !== undefined && !Number.isSafeInteger(version)) return null;
  return { service, version: typeof version === 'number' ? version : null };
}

/**
 * LISTENs on {@link CHANNEL} over a connection of its own and calls ``onVersion(service, version)`` for each
 * notification. A lost connection is opened again after a backoff ({@link RECONNECT_MS}, doubling up to
 * {@link RECONNECT_MAX_MS}), then ``onResumed()``: notifications sent meanwhile were missed. One warning when it
 * cannot listen (the database gone, a read replica that refuses LISTEN): changes then arrive with the re-read.
 * Neither its connection nor its timers keep the process alive.
 */
export class Listener {
  private client: ListenClientLike | null = null;
  private timer: NodeJS.Timeout | null = null;
  private delay = RECONNECT_MS;
  private stopped = false;
  private warned = false;
  private lostOnce = false;
  /** Whether LISTEN is in effect now. */
  listening = false;

  constructor(
    private readonly newClient: () => ListenClientLike,
    private readonly onVersion: (service: string, version: number | null) => void,
    private readonly onResumed: () => void,
    private readonly warn: (message: string) => void,
    private readonly fallback: string,
  ) {
    void this.open();
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    let client: ListenClientLike;
    try {
      client = this.newClient();
    } catch (error) {
      this.lost(null, error);
      return;
    }
    this.client = client;
    client.unref?.();
    client.on('notification', (message) => {
      if (message.channel !== CHANNEL) return;
      const note = parseNotification(message.payload);
      if (note !== null) this.onVersion(note.service, note.version);
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('the connection was closed')));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      this.lost(client, error);
      return;
    }
    if (this.stopped || this.client !== client) return;
    this.listening = true;
    this.delay = RECONNECT_MS;
    this.warned = false;
    if (this.lostOnce) this.onResumed();
  }

  private lost(client: ListenClientLike | null, error: unknown): void {
    if (client !== null && this.client !== client) return; // an old connection's last words
    this.client = null;
    this.listening = false;
    if (client !== null) void client.end().catch(() => undefined);
    if (this.stopped) return;
    this.lostOnce = true;
    if (!this.warned) {
      this.warned = true;
      const text = error instanceof Error ? error.message || error.name : String(error);
      this.warn(`not listening for config changes (${text.trim().split('\n')[0] ?? 'unknown error'}): they arrive with ${this.fallback}`);
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.open();
    }, this.delay);
    this.timer.unref();
    this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
  }

  /** Stop listening and close the connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.listening = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const client = this.client;
    this.client = null;
    if (client !== null) {
      client.ref?.(); // else the wait for its close is all that is left, and the process ends under it
      await client.end().catch(() => undefined);
    }
  }
}
