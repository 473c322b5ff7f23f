import { DEFAULTS, FIELDS, Settings } from './fields';

/** What `loomctl config show SERVICE --client kafkajs` prints: options split as KafkaJS takes them. */
export interface KafkajsOptions {
  consumer: Record<string, unknown> & { groupId: string };
  subscribe: Record<string, unknown> & { fromBeginning?: boolean };
  run: Record<string, unknown> & { autoCommit?: boolean; autoCommitInterval?: number };
}

/** The table's settings as KafkaJS options, placed by fields.json exactly as the Python export places them. */
export function kafkajsOptions(groupId: string, settings: Settings): KafkajsOptions {
  const options: KafkajsOptions = { consumer: { groupId }, subscribe: {}, run: {} };
  for (const field of FIELDS) {
    if (field.kafkajs === null) continue;
    const stored = settings[field.name] ?? DEFAULTS[field.name];
    const value = field.kafkajs.values ? field.kafkajs.values[String(stored)] : stored;
    const path = field.kafkajs.path;
    const leaf = path[path.length - 1];
    if (leaf === undefined) throw new Error(`fields.json: the kafkajs path of ${field.name} is empty`);
    let node = options as unknown as Record<string, unknown>;
    for (const key of path.slice(0, -1)) {
      node[key] ??= {};
      node = node[key] as Record<string, unknown>;
    }
    node[leaf] = value;
  }
  return options;
}

/** Settings the package carries out itself because KafkaJS has no option for them. */
export const ENFORCED: Readonly<Record<string, string>> = {
  max_poll_records: 'eachBatch receives slices of at most max_poll_records messages; offsets are resolved and a heartbeat sent after each slice',
};

/** The group protocol's fields: KafkaJS speaks only the classic protocol, said once below rather than per field. */
const PROTOCOL_FIELDS: Readonly<Record<string, true>> = {
  group_protocol: true, group_remote_assignor: true, record_lock_duration_ms: true, // the last: a share group's, set on the broker
};

/** The assigners KafkaJS ships, by the table's names. */
export const KAFKAJS_ASSIGNORS: readonly string[] = ['roundrobin'];

/**
 * What KafkaJS cannot honour for these settings, as one message, or null.
 *
 * A field without a KafkaJS option that the package does not enforce is named only when it differs
 * from the default: at the default, KafkaJS's own behaviour is what the table asks for anyway.
 */
export function unhonoured(settings: Settings, groupProtocol?: string | null): string | null {
  const notes: string[] = [];
  const protocol = groupProtocol ?? (typeof settings.group_protocol === 'string' ? settings.group_protocol : null);
  const assignor = String(settings.partition_assignment_strategy ?? DEFAULTS.partition_assignment_strategy);
  if (!KAFKAJS_ASSIGNORS.includes(assignor)) {
    notes.push(`partition_assignment_strategy=${assignor} (KafkaJS ships only the round-robin assigner, used instead)`);
  }
  if (settings.auto_offset_reset === 'none') {
    notes.push('auto_offset_reset=none (KafkaJS cannot fail without a committed offset; it starts at the latest)');
  }
  for (const field of FIELDS) {
    if (field.kafkajs !== null || field.name in ENFORCED || field.name in PROTOCOL_FIELDS) continue;
    const value = settings[field.name];
    if (value !== undefined && value !== field.default) {
      notes.push(`${field.name}=${value} (KafkaJS has no such option; its own default applies)`);
    }
  }
  if (protocol === 'consumer') {
    notes.push('group_protocol=consumer (KafkaJS has no KIP-848 protocol; it joins with the classic one, ' +
      'sending its own session timeout and heartbeat: the group configs `loomctl config push` sets do not apply to it)');
  }
  return notes.length ? `KafkaJS cannot honour ${notes.join('; ')}` : null;
}
