/** Why a call failed, as a word a service can branch on. */
export type ConsumerConfigErrorCode =
  | 'BAD_INPUT' // a wrong argument: service name, pool, topics, broker list, properties file
  | 'NOT_FOUND' // the service has no row in pipeline_consumer_configs
  | 'UNSUPPORTED'; // a security setting KafkaJS cannot honour, or a share group (KafkaJS has no share consumer)

/** The one error this package throws (or rejects with) for an expected failure. */
export class ConsumerConfigError extends Error {
  readonly code: ConsumerConfigErrorCode;

  constructor(code: ConsumerConfigErrorCode, message: string) {
    super(message);
    this.name = 'ConsumerConfigError';
    this.code = code;
  }
}

/** A value quoted in a message: one line, short. */
export function shown(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  text = text.replace(/[\r\n\t]/g, ' ');
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}
