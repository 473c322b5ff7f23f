import { readFileSync } from 'node:fs';
import { ConsumerConfigError, shown } from './errors';

/**
 * A librdkafka properties file (LOOM_KAFKA_CONFIG) read as Java reads .properties: `=`, `:` or
 * blanks between key and value, `#` and `!` comments, backslash continuations and escapes.
 */
export function parseProperties(text: string, source = 'properties'): Record<string, string> {
  if (text.includes('\0')) throw new ConsumerConfigError('BAD_INPUT', `${source} is not a text file`);
  const props: Record<string, string> = {};
  const physical = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/)[Symbol.iterator]();
  for (let next = physical.next(); !next.done; next = physical.next()) {
    let line = next.value.replace(/^[ \t\f]+/, '');
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    while (endsWithOddBackslashes(line)) {
      const continuation = physical.next();
      if (continuation.done) break;
      line = line.slice(0, -1) + continuation.value.replace(/^[ \t\f]+/, '');
    }
    if (endsWithOddBackslashes(line)) line = line.slice(0, -1);
    let k = 0;
    let key = '';
    while (k < line.length && !'=: \t\f'.includes(line.charAt(k))) {
      if (line.charAt(k) === '\\' && k + 1 < line.length) {
        key += line.slice(k, k + 2);
        k += 2;
      } else key += line.charAt(k++);
    }
    while (k < line.length && ' \t\f'.includes(line.charAt(k))) k++;
    if (k < line.length && '=:'.includes(line.charAt(k))) k++;
    while (k < line.length && ' \t\f'.includes(line.charAt(k))) k++;
    props[unescape(key, source)] = unescape(line.slice(k), source);
  }
  return props;
}

function endsWithOddBackslashes(line: string): boolean {
  const match = /\\+$/.exec(line);
  return match !== null && match[0].length % 2 === 1;
}

function unescape(text: string, source: string): string {
  return text.replace(/\\(u([0-9a-fA-F]{4})|u|.)/g, (_whole: string, escape: string, hex?: string) => {
    if (hex) return String.fromCharCode(parseInt(hex, 16));
    if (escape === 'u') throw new ConsumerConfigError('BAD_INPUT', `${source}: a \\u escape needs four hex digits`);
    return ({ t: '\t', n: '\n', r: '\r', f: '\f' } as Record<string, string>)[escape] ?? escape;
  });
}

export function readPropertiesFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConsumerConfigError('BAD_INPUT', `cannot read the Kafka properties file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  return parseProperties(text, path);
}

/** The part of a KafkaJS client config that security properties decide. */
export interface SecurityConfig {
  brokers?: string[];
  clientId?: string;
  ssl?: boolean | { ca?: string[]; cert?: string; key?: string; passphrase?: string; rejectUnauthorized?: boolean };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

const SASL_MECHANISMS: Record<string, 'plain' | 'scram-sha-256' | 'scram-sha-512'> = {
  PLAIN: 'plain',
  'SCRAM-SHA-256': 'scram-sha-256',
  'SCRAM-SHA-512': 'scram-sha-512',
};

// Properties that would change security and that KafkaJS has no equivalent for: refused, never ignored.
const UNSUPPORTED = /^(ssl\.keystore\.|ssl\.truststore\.|ssl\.engine\.|ssl\.providers|sasl\.kerberos\.|sasl\.oauthbearer\.|ssl\.crl\.location|ssl\.ca\.certificate\.stores|ssl_key\.|ssl\.key\.pem|ssl\.certificate\.pem|ssl_certificate\.pem|ssl\.ca\.pem)/;

function readPem(path: string, property: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConsumerConfigError('BAD_INPUT', `${property}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/**
 * librdkafka security properties translated to KafkaJS `ssl`/`sasl`, as the Python loader passes
 * them to librdkafka. Values are never quoted in errors: they may be secrets.
 */
export function securityConfig(props: Record<string, string>): SecurityConfig {
  const config: SecurityConfig = {};
  for (const key of Object.keys(props)) {
    if (UNSUPPORTED.test(key)) {
      throw new ConsumerConfigError('UNSUPPORTED', `the Kafka properties file sets ${key}, which KafkaJS cannot use (use PEM files: ssl.ca.location, ssl.certificate.location, ssl.key.location)`);
    }
  }
  const protocol = (props['security.protocol'] ?? 'PLAINTEXT').toUpperCase();
  if (!['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'].includes(protocol)) {
    throw new ConsumerConfigError('BAD_INPUT', `security.protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, not ${shown(props['security.protocol'])}`);
  }
  if (props['bootstrap.servers']) {
    config.brokers = props['bootstrap.servers'].split(',').map((s) => s.trim()).filter(Boolean);
  }
  if (props['client.id']) config.clientId = props['client.id'];
  if (protocol === 'SSL' || protocol === 'SASL_SSL') {
    const ssl: Exclude<SecurityConfig['ssl'], boolean | undefined> = {};
    if (props['ssl.ca.location']) ssl.ca = [readPem(props['ssl.ca.location'], 'ssl.ca.location')];
    if (props['ssl.certificate.location']) ssl.cert = readPem(props['ssl.certificate.location'], 'ssl.certificate.location');
    if (props['ssl.key.location']) ssl.key = readPem(props['ssl.key.location'], 'ssl.key.location');
    if (props['ssl.key.password'] !== undefined) ssl.passphrase = props['ssl.key.password'];
    const verify = props['enable.ssl.certificate.verification'];
    if (verify !== undefined) {
      if (!['true', 'false'].includes(verify.toLowerCase())) {
        throw new ConsumerConfigError('BAD_INPUT', 'enable.ssl.certificate.verification must be true or false');
      }
      ssl.rejectUnauthorized = verify.toLowerCase() === 'true';
    }
    config.ssl = Object.keys(ssl).length ? ssl : true;
  }
  if (protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL') {
    const name = (props['sasl.mechanism'] ?? props['sasl.mechanisms'] ?? 'GSSAPI').toUpperCase();
    const mechanism = SASL_MECHANISMS[name];
    if (mechanism === undefined) {
      throw new ConsumerConfigError('UNSUPPORTED', `sasl.mechanism ${shown(name)} is not one KafkaJS supports without a custom provider (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)`);
    }
    const username = props['sasl.username'];
    const password = props['sasl.password'];
    if (username === undefined || password === undefined) {
      throw new ConsumerConfigError('BAD_INPUT', `security.protocol ${protocol} with ${name} needs sasl.username and sasl.password`);
    }
    config.sasl = { mechanism, username, password };
  }
  return config;
}
