import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One setting of pipeline_consumer_configs, as scripts/node-fields.py writes it from loomctl/consumer_config.py. */
export interface FieldSpec {
  name: string;
  kind: 'int' | 'bool' | 'str';
  default: number | boolean | string;
  minimum: number | null;
  maximum: number | null;
  choices: string[] | null;
  unit: string | null;
  description: string;
  java: string | null;
  librdkafka: string | null;
  /** Where `loomctl config show --client kafkajs` puts the field; null where KafkaJS has no option. */
  kafkajs: { path: string[]; values?: Record<string, unknown> } | null;
  /**
   * How a change reaches a running service, by group protocol: `live` (the loader, at the next poll), `recreate`
   * (a new client at a safe point), `broker` (a group config, `loomctl config push`) or `unused`.
   */
  reload: Record<'classic' | 'consumer' | 'share', 'live' | 'recreate' | 'broker' | 'unused'>;
}

export interface FieldTable {
  service_name_pattern: string;
  fields: FieldSpec[];
  rules: { name: string; fields: string[]; sql: string; reason: string }[];
}

export type SettingValue = number | boolean | string;
export type Settings = Record<string, SettingValue>;

// fields.json sits beside package.json, one level above both src/ and dist/.
export const FIELD_TABLE: FieldTable = JSON.parse(readFileSync(join(__dirname, '..', 'fields.json'), 'utf8')) as FieldTable;
export const FIELDS: readonly FieldSpec[] = FIELD_TABLE.fields;
export const FIELDS_BY_NAME: ReadonlyMap<string, FieldSpec> = new Map(FIELDS.map((f) => [f.name, f]));
export const DEFAULTS: Readonly<Settings> = Object.freeze(Object.fromEntries(FIELDS.map((f) => [f.name, f.default])));
export const SERVICE_NAME = new RegExp(FIELD_TABLE.service_name_pattern.replace(/^\^?/, '^').replace(/\$?$/, '$'));

/** The field's value as the table holds it, or undefined when ``raw`` is not one (wrong type, out of range). */
export function coerce(field: FieldSpec, raw: unknown): SettingValue | undefined {
  if (field.kind === 'bool') {
    return typeof raw === 'boolean' ? raw : undefined;
  }
  if (field.kind === 'str') {
    return typeof raw === 'string' && (field.choices === null || field.choices.includes(raw)) ? raw : undefined;
  }
  // node-postgres returns bigint columns (fetch_max_bytes) as strings.
  const value = typeof raw === 'string' && /^-?\d{1,16}$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) return undefined;
  if (field.minimum !== null && value < field.minimum) return undefined;
  if (field.maximum !== null && value > field.maximum) return undefined;
  return value;
}

/** A field's value as a cache file must hold it: the exact type (no numeric strings), in range or one of the choices. */
export function fits(field: FieldSpec, raw: unknown): boolean {
  if (field.kind === 'bool') return typeof raw === 'boolean';
  if (field.kind === 'str') return typeof raw === 'string' && (field.choices === null || field.choices.includes(raw));
  return typeof raw === 'number' && Number.isSafeInteger(raw) &&
    (field.minimum === null || raw >= field.minimum) && (field.maximum === null || raw <= field.maximum);
}

const SIDE = /^\s*([a-z_]+)\s*(?:([*+])\s*(\d+))?\s*$/;

function sideValue(text: string, settings: Readonly<Settings>): number | undefined {
  const match = SIDE.exec(text);
  if (match === null) return undefined;
  const [, name, op, operand] = match;
  const value = settings[name ?? ''];
  if (typeof value !== 'number') return undefined;
  if (op === undefined) return value;
  return op === '*' ? value * Number(operand) : value + Number(operand);
}

/** Whether ``settings`` hold a rule of the table (its SQL: ``a [* n | + n] >= | <= b [* n | + n]``); null when the rule is no such comparison. */
export function ruleHolds(rule: FieldTable['rules'][number], settings: Readonly<Settings>): boolean | null {
  const match = /^(.*?)(>=|<=)(.*)$/.exec(rule.sql);
  if (match === null) return null;
  const left = sideValue(match[1] ?? '', settings);
  const right = sideValue(match[3] ?? '', settings);
  if (left === undefined || right === undefined) return null;
  return match[2] === '>=' ? left >= right : left <= right;
}
