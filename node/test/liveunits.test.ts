/** The live-config pieces without a stack: a change's line, the classes, the listener's one warning. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';

import { CHANNEL, DEFAULTS, ListenClientLike, Listener, changeBetween, reloadClass } from '@loomctl/consumer-config';

const running = { serviceName: 'svc', consumerGroupId: 'g', settings: { ...DEFAULTS, max_poll_records: 50 }, version: 3 };

test('a change is said in the Python loader\'s words, each setting by its class', () => {
  const change = changeBetween(running, { ...running, settings: { ...running.settings, max_poll_records: 5, fetch_max_bytes: 2000000 }, version: 4 });
  assert.ok(change);
  change.seconds = 0.8;
  assert.equal(change.describe(), 'max_poll_records 50 -> 5 at the next poll; fetch_max_bytes 52428800 -> 2000000 by a new client (0.8 s)');
  assert.ok(change.needsClient);
  change.refusedClasses = ['recreate'];
  assert.ok(!change.needsClient);
  assert.match(change.describe(), /fetch_max_bytes 52428800 -> 2000000 not applied: the service refuses this class/);
  assert.equal(changeBetween(running, { ...running }), null);
  assert.equal(reloadClass('consumer_group_id', DEFAULTS), 'recreate');
  assert.equal(reloadClass('session_timeout_ms', { ...DEFAULTS, group_protocol: 'consumer' }), 'broker');
  assert.equal(reloadClass('reconnect_backoff_ms', DEFAULTS), 'unused', 'KafkaJS has no such option: a new client would change nothing');
});

/** A pg Client that connects and refuses LISTEN, as a read replica does. */
class Replica extends EventEmitter implements ListenClientLike {
  static made = 0;
  ended = false;
  constructor() {
    super();
    Replica.made += 1;
  }
  connect(): Promise<void> {
    return Promise.resolve();
  }
  query(text: string): Promise<void> {
    return Promise.reject(new Error(`cannot execute ${text.split(' ')[0]} during recovery`));
  }
  end(): Promise<void> {
    this.ended = true;
    return Promise.resolve();
  }
  unref(): void {}
}

test('a listener that cannot LISTEN warns once and tries again, without keeping the process alive', async () => {
  const warnings: string[] = [];
  const listener = new Listener(() => new Replica(), () => undefined, () => undefined, (m) => void warnings.push(m), 'the re-read every 60s');
  const deadline = Date.now() + 5000;
  while (Replica.made < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  await listener.stop();
  assert.ok(Replica.made >= 2, 'it connects again after the backoff');
  assert.equal(listener.listening, false);
  assert.deepEqual(warnings, [`not listening for config changes (cannot execute LISTEN during recovery): they arrive with the re-read every 60s`]);
  assert.equal(CHANNEL, 'loomctl_config');
});
