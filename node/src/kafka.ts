/**
 * The KafkaJS-shaped interface the package needs. KafkaJS satisfies it; another client with the
 * same API (for instance Confluent's KafkaJS-compatible one) can be plugged in through
 * `kafkaFactory`, but only KafkaJS is tested here.
 */
export interface MessageLike {
  offset: string;
}

export interface BatchLike<M extends MessageLike = MessageLike> {
  topic: string;
  partition: number;
  highWatermark: string;
  messages: M[];
  isEmpty(): boolean;
  firstOffset(): string | null;
  lastOffset(): string;
  offsetLag(): string;
  offsetLagLow(): string;
}

export interface EachBatchPayloadLike<B extends BatchLike = BatchLike> {
  batch: B;
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  commitOffsetsIfNecessary(offsets?: unknown): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

export interface RunConfigLike<P extends EachBatchPayloadLike = EachBatchPayloadLike> {
  eachBatch?: (payload: P) => Promise<void>;
  eachMessage?: (payload: never) => Promise<void>;
  eachBatchAutoResolve?: boolean;
  autoCommit?: boolean;
  autoCommitInterval?: number | null;
  autoCommitThreshold?: number | null;
  partitionsConsumedConcurrently?: number;
}

export interface ConsumerLike {
  connect(): Promise<void>;
  subscribe(subscription: { topics: (string | RegExp)[]; fromBeginning?: boolean }): Promise<void>;
  // Any payload: KafkaJS's own Consumer, whose run() takes its EachBatchPayload, must satisfy this interface.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- public API: a narrower payload would change what implementers and callers see
  run(config?: RunConfigLike<any>): Promise<void>;
  disconnect(): Promise<void>;
}

/** The part of a KafkaJS admin client the loader uses to name the broker's bounds when it refuses a consumer. */
export interface AdminLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  describeCluster(): Promise<{ brokers: { nodeId: number }[] }>;
  describeConfigs(request: {
    includeSynonyms: boolean;
    resources: { type: number; name: string; configNames?: string[] }[];
  }): Promise<{ resources: { configEntries: { configName: string; configValue: string | null }[] }[] }>;
}

export interface KafkaLike {
  consumer(config: Record<string, unknown> & { groupId: string }): ConsumerLike;
  /** Optional: without it, a refused session timeout is reported without the broker's bounds. */
  admin?(): AdminLike;
}

/** What the package hands the client's constructor: the caller's config plus security and the request timeout. */
export type KafkaClientConfig = Record<string, unknown> & { brokers: string[] };

export type KafkaFactory = (config: KafkaClientConfig) => KafkaLike;
