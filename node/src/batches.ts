import { BatchLike, EachBatchPayloadLike, MessageLike } from './kafka';

/** A view of ``messages``, a run of ``batch``, with the batch methods answering for the view. */
export function sliceBatch<B extends BatchLike>(batch: B, messages: MessageLike[], isLast: boolean): B {
  const slice = Object.create(batch) as B;
  const head = messages[0];
  const first = head === undefined ? null : head.offset;
  // The last slice ends where the whole batch ends: KafkaJS filters control records after the last message.
  const last = isLast ? batch.lastOffset() : lastOffsetOf(messages);
  const high = BigInt(batch.highWatermark);
  Object.defineProperties(slice, {
    messages: { value: messages, enumerable: true },
    isEmpty: { value: () => messages.length === 0 },
    firstOffset: { value: () => first },
    lastOffset: { value: () => last },
    offsetLag: { value: () => String(high - 1n - BigInt(last)) },
    offsetLagLow: { value: () => (first === null ? '0' : String(high - 1n - BigInt(first))) },
  });
  return slice;
}

function lastOffsetOf(messages: MessageLike[]): string {
  const message = messages[messages.length - 1];
  if (message === undefined) throw new TypeError('an empty slice that is not the last one has no last offset');
  return message.offset;
}

export interface LimitOptions {
  /** The current max_poll_records, read before each slice (the loader follows the service's config). */
  limit: () => Promise<number>;
  /**
   * Asked before each slice after the first: whether to hand it out. False stops the batch there, the rest of it
   * not resolved (a new client takes over and fetches it again).
   */
  next?: () => Promise<boolean>;
  /** What the caller asked of KafkaJS's eachBatchAutoResolve (default true). */
  autoResolve: boolean;
  autoCommit: boolean;
  /** Runs around every slice handed to the application (batch tracking). */
  around?: <P extends EachBatchPayloadLike>(payload: P, handle: () => Promise<void>) => Promise<void>;
}

/**
 * eachBatch handed slices of at most ``limit()`` messages. KafkaJS has no max.poll.records: a fetch
 * returns what fits in maxBytesPerPartition. After each slice the package resolves its last offset
 * (when auto-resolve is on), heartbeats and commits if due, so a slow batch neither loses the
 * member nor commits what was not processed. KafkaJS itself must run with eachBatchAutoResolve
 * false: its own resolve would mark the whole batch done even when a rebalance stopped the slices.
 */
export function limitBatches<P extends EachBatchPayloadLike>(
  eachBatch: (payload: P) => Promise<void>,
  options: LimitOptions,
): (payload: P) => Promise<void> {
  const handle = (payload: P) => (options.around ? options.around(payload, () => eachBatch(payload)) : eachBatch(payload));
  return async (payload: P) => {
    const { batch } = payload;
    const messages = batch.messages;
    if (messages.length === 0) {
      await handle(payload);
      if (options.autoResolve) payload.resolveOffset(batch.lastOffset());
      return;
    }
    for (let start = 0, limit = 0; start < messages.length; start += limit) {
      if (start > 0 && (!payload.isRunning() || payload.isStale())) return;
      if (start > 0 && options.next && !(await options.next())) return;
      // Read for every slice: a new max_poll_records applies from the next slice on.
      limit = Math.max(1, Math.floor(await options.limit()));
      const part = messages.slice(start, start + limit);
      const isLast = start + limit >= messages.length;
      await handle({ ...payload, batch: sliceBatch(batch, part, isLast) });
      if (options.autoResolve) payload.resolveOffset(lastOffsetOf(part));
      await payload.heartbeat();
      if (options.autoCommit && !isLast) await payload.commitOffsetsIfNecessary();
    }
  };
}
