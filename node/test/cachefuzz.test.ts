/**
 * The disk cache never fails a service: whatever a cache file holds, loadConfig with the config
 * database unreachable gives settings the field table accepts (from the file, with the table's
 * default for each value it refuses, or the defaults), with one warning, without blocking. A
 * seeded generator writes ~1,000 files: random bytes, random JSON, cache documents with every
 * field wrong, deep nesting, mangled good files; then a FIFO and a sparse 300 MB file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { ConsumerConfigLoader, DEFAULTS, FIELDS, FIELD_TABLE } from '@loomctl/consumer-config';

const SERVICE = 'fuzzed-service';
const SECRET = 'Zq7-secret-Xv9';
const CASES = Math.max(1, Math.round(1000 * Number(process.env.LOOM_FUZZ_SCALE ?? '1')));
const down = { connect: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1')) };

/** mulberry32: a small seeded generator, so a failing case is the same case on the next run. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly random: () => number) {}
  int(low: number, high: number): number {
    return low + Math.floor(this.random() * (high - low + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }
  scalar(): unknown {
    return this.pick<() => unknown>([
      () => null, () => true, () => false, () => this.int(-1e6, 1e6), () => this.random() * 1e9 - 5e8,
      () => this.pick([0, -1, 1, 2 ** 31, 2 ** 53, 2 ** 64, 1e30, 1e308, -5, 0.5, 500.5, Number.MAX_SAFE_INTEGER + 2]),
      () => SECRET, () => '', () => ' ', () => 'a\u0000b', () => '\ud800', () => String(this.int(-10, 1e6)),
      () => Array.from({ length: this.int(0, 12) }, () => String.fromCharCode(this.int(0, 0xffff))).join(''),
    ])();
  }
  json(depth = 0): unknown {
    const kind = depth > 3 ? 0 : this.int(0, 3);
    if (kind === 0 || kind === 1) return this.scalar();
    if (kind === 2) return Array.from({ length: this.int(0, 4) }, () => this.json(depth + 1));
    return Object.fromEntries(Array.from({ length: this.int(0, 4) }, () => [String(this.scalar()), this.json(depth + 1)]));
  }
  fieldValue(name: string): unknown {
    const field = FIELDS.find((f) => f.name === name);
    assert.ok(field);
    const edges: unknown[] = [field.default];
    if (field.choices) edges.push(...field.choices, field.choices[0]?.toUpperCase(), 'sideways');
    else if (field.kind === 'bool') edges.push(true, false, 'true', 1, 0);
    else edges.push(field.minimum, field.maximum, (field.minimum ?? 0) - 1, (field.maximum ?? 0) + 1, String(field.default), 0.5, NaN);
    return this.random() < 0.6 ? this.pick(edges) : this.json(2);
  }
  document(): unknown {
    const document: Record<string, unknown> = {};
    if (this.random() < 0.9) document.service_name = this.random() < 0.85 ? SERVICE : this.pick(['other-service', null, 5, '']);
    if (this.random() < 0.9) {
      document.consumer_group_id = this.random() < 0.6 ? `${SERVICE}-group` : this.pick([null, '', '   ', 'tab\there', 'x'.repeat(300), 7, [], {}, SECRET]);
    }
    if (this.random() < 0.7) document.version = this.random() < 0.5 ? this.int(0, 100) : this.scalar();
    if (this.random() < 0.5) document.loaded_at = this.scalar();
    if (this.random() < 0.9) {
      if (this.random() < 0.8) {
        const settings: Record<string, unknown> = {};
        for (const field of FIELDS) if (this.random() < 0.4) settings[field.name] = this.fieldValue(field.name);
        if (this.random() < 0.2) settings.unknown_field = this.json(1);
        document.settings = settings;
      } else {
        document.settings = this.json(1);
      }
    }
    return document;
  }
  nested(): string {
    const depth = this.int(1, 200_000);
    const [open, close] = this.pick([['[', ']'], ['{"a":', '}']] as const);
    const inner = open.repeat(depth) + '1' + close.repeat(depth);
    return this.random() < 0.5 ? inner : `{"service_name":"${SERVICE}","consumer_group_id":"g","settings":${inner}}`;
  }
  mangled(): Buffer {
    const raw = [...Buffer.from(JSON.stringify({ service_name: SERVICE, consumer_group_id: 'g', version: 3, settings: DEFAULTS }))];
    for (let i = this.int(1, 4); i > 0 && raw.length > 0; i--) {
      const at = this.int(0, raw.length - 1);
      const action = this.int(0, 2);
      if (action === 0) raw.length = at;
      else if (action === 1) raw[at] = this.int(0, 255);
      else raw.splice(at, 0, ...Array.from({ length: this.int(1, 8) }, () => this.int(0, 255)));
    }
    return Buffer.from(raw);
  }
  file(): Buffer {
    const kind = this.int(0, 9);
    if (kind <= 4) return Buffer.from(JSON.stringify(this.document()) ?? 'null');
    if (kind === 5) return Buffer.from(JSON.stringify(this.json()) ?? 'null');
    if (kind === 6) return Buffer.from(Array.from({ length: this.int(0, 2000) }, () => this.int(0, 255)));
    if (kind === 7) return Buffer.from(this.nested());
    if (kind === 8) return this.mangled();
    // the Python writer's NaN and Infinity, which JSON.parse refuses
    return Buffer.from(`{"service_name":"${SERVICE}","consumer_group_id":"g","settings":{"max_poll_records":${this.pick(['NaN', 'Infinity', '-Infinity', '1e30'])}}}`);
  }
}

function holdsRules(settings: Readonly<Record<string, unknown>>): boolean {
  const value = (side: string): number => {
    const [name, op, operand] = side.trim().split(/\s+/);
    const base = Number(settings[name ?? '']);
    return op === '*' ? base * Number(operand) : op === '+' ? base + Number(operand) : base;
  };
  return FIELD_TABLE.rules.every((rule) => {
    // a rule that is no comparison (share_offset_reset) is not the loader's to mend: it refuses share services
    if (!/(>=|<=)/.test(rule.sql)) return true;
    const [left, op, right] = rule.sql.split(/(>=|<=)/);
    return op === '>=' ? value(left ?? '') >= value(right ?? '') : value(left ?? '') <= value(right ?? '');
  });
}

function recording(): { warn(message: string): void; warnings: string[] } {
  const warnings: string[] = [];
  return { warn: (message: string) => void warnings.push(message), warnings };
}

async function load(cacheDir: string): Promise<{ config: Awaited<ReturnType<ConsumerConfigLoader['loadConfig']>>; warnings: string[] }> {
  const logger = recording();
  const config = await new ConsumerConfigLoader(down, { cacheDir, logger }).loadConfig(SERVICE);
  return { config, warnings: logger.warnings };
}

function assertUsable(config: Awaited<ReturnType<ConsumerConfigLoader['loadConfig']>>, what: string): void {
  assert.ok(config.source === 'cache' || config.source === 'defaults', what);
  assert.equal(typeof config.consumerGroupId, 'string', what);
  assert.ok(config.consumerGroupId.trim() !== '' && ![...config.consumerGroupId].some((c) => c.charCodeAt(0) < 0x20 || c === '\x7f'), what);
  assert.deepEqual(Object.keys(config.settings).sort(), Object.keys(DEFAULTS).sort(), what);
  for (const field of FIELDS) {
    const value = config.settings[field.name];
    if (field.kind === 'bool') assert.equal(typeof value, 'boolean', `${what}: ${field.name}`);
    else if (field.kind === 'str') assert.ok(typeof value === 'string' && (field.choices ?? [value]).includes(value), `${what}: ${field.name}`);
    else assert.ok(Number.isSafeInteger(value) && (value as number) >= (field.minimum ?? 0) && (value as number) <= (field.maximum ?? 0), `${what}: ${field.name}=${String(value)}`);
  }
  assert.ok(holdsRules(config.settings), what);
  assert.ok(config.version === null || Number.isSafeInteger(config.version), what);
  assert.ok(Number.isFinite(config.loadedAt), what);
  const options = config.kafkajs();
  assert.equal(options.consumer.groupId, config.consumerGroupId, what);
}

test(`any of ${CASES} cache files gives usable settings with one warning`, async (t) => {
  const gen = new Gen(generator(22));
  const cacheDir = mkdtempSync(join(tmpdir(), 'loom-fuzz-'));
  const sources: Record<string, number> = { cache: 0, defaults: 0 };
  for (let i = 0; i < CASES; i++) {
    const raw = gen.file();
    writeFileSync(join(cacheDir, `${SERVICE}.json`), raw);
    const what = `case ${i}: ${raw.subarray(0, 200).toString('latin1')}`;
    const started = performance.now();
    const { config, warnings } = await load(cacheDir);
    assert.ok(performance.now() - started < 2000, `${what}: took ${Math.round(performance.now() - started)} ms`);
    assertUsable(config, what);
    assert.equal(warnings.length, 1, `${what}: ${warnings.join('\n')}`);
    assert.ok(warnings[0]?.includes('config database unavailable') && !warnings[0].includes(SECRET), `${what}: ${warnings[0]}`);
    if (config.source === 'defaults') assert.deepEqual({ ...config.settings }, { ...DEFAULTS }, what);
    sources[config.source] = (sources[config.source] ?? 0) + 1;
  }
  assert.ok((sources.cache ?? 0) > CASES / 10 && (sources.defaults ?? 0) > CASES / 10, JSON.stringify(sources));
  t.diagnostic(`sources: ${JSON.stringify(sources)}`);
});

test('a refused value takes the table default, the rest of the file is used, one warning names the file and the field', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'loom-fuzz-'));
  const path = join(cacheDir, `${SERVICE}.json`);
  for (const [settings, expected, named] of [
    [{ max_poll_records: 'abc', fetch_max_wait_ms: 100 }, { max_poll_records: 500, fetch_max_wait_ms: 100 }, 'max_poll_records'],
    [{ max_poll_records: -5, fetch_max_wait_ms: 100 }, { max_poll_records: 500, fetch_max_wait_ms: 100 }, 'max_poll_records'],
    [{ max_poll_records: 1e30 }, { max_poll_records: 500 }, 'max_poll_records'],
    [{ auto_offset_reset: 'sideways', max_poll_records: 7 }, { auto_offset_reset: 'latest', max_poll_records: 7 }, 'auto_offset_reset'],
    [{ session_timeout_ms: 60000, max_poll_interval_ms: 10000 }, { session_timeout_ms: 45000, max_poll_interval_ms: 300000 }, 'max_poll_interval_ms'],
  ] as const) {
    writeFileSync(path, JSON.stringify({ service_name: SERVICE, consumer_group_id: 'svc-group', version: 4, settings }));
    const { config, warnings } = await load(cacheDir);
    assert.equal(config.source, 'cache');
    assert.equal(config.consumerGroupId, 'svc-group');
    for (const [name, value] of Object.entries(expected)) assert.equal(config.settings[name], value, name);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.ok(warnings[0]?.includes(path) && warnings[0].includes(named) && warnings[0].includes('using the cached config'), warnings[0]);
  }
});

test('a file that is no usable cache means the defaults with one warning naming the file and why', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'loom-fuzz-'));
  const path = join(cacheDir, `${SERVICE}.json`);
  const good = { service_name: SERVICE, consumer_group_id: 'g', version: 1 };
  for (const [raw, reason] of [
    [JSON.stringify({ ...good, consumer_group_id: null, settings: {} }), 'consumer_group_id'],
    [JSON.stringify({ ...good, consumer_group_id: '  ', settings: {} }), 'consumer_group_id'],
    [JSON.stringify({ ...good, settings: [1, 2] }), 'settings are no JSON object'],
    [JSON.stringify({ ...good, settings: 'abc' }), 'settings are no JSON object'],
    [JSON.stringify({ ...good, settings: null }), 'settings are no JSON object'],
    [JSON.stringify({ ...good, service_name: 'other', settings: {} }), 'another service'],
    ['[]', 'no JSON object'],
    ['\xff{', 'not valid JSON'],
  ] as const) {
    writeFileSync(path, raw, 'latin1');
    const { config, warnings } = await load(cacheDir);
    assert.equal(config.source, 'defaults', raw);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.ok(warnings[0]?.includes(path) && warnings[0].includes(reason) && warnings[0].includes('using the defaults'), warnings[0]);
  }
});

test('a FIFO in the cache folder is never waited on (nor a directory)', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'loom-fuzz-'));
  execFileSync('mkfifo', [join(cacheDir, `${SERVICE}.json`)]);
  const started = performance.now();
  const { config, warnings } = await load(cacheDir);
  assert.ok(performance.now() - started < 2000);
  assert.equal(config.source, 'defaults');
  assert.match(warnings[0] ?? '', /not a regular file/);
  const other = mkdtempSync(join(tmpdir(), 'loom-fuzz-'));
  mkdirSync(join(other, `${SERVICE}.json`));
  assert.match((await load(other)).warnings[0] ?? '', /not a regular file/);
});

test('an oversized cache file is not read', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'loom-fuzz-'));
  const path = join(cacheDir, `${SERVICE}.json`);
  writeFileSync(path, JSON.stringify({ service_name: SERVICE, consumer_group_id: 'g', settings: { max_poll_records: 7 } }));
  truncateSync(path, 300 * 1024 * 1024); // sparse: nothing written
  const started = performance.now();
  const { config, warnings } = await load(cacheDir);
  assert.ok(performance.now() - started < 500, 'the file was read');
  assert.equal(config.source, 'defaults');
  assert.match(warnings[0] ?? '', /314,572,800 bytes/);
});
