export { ConsumerConfigError, ConsumerConfigErrorCode } from './errors';
export { DEFAULTS, FIELDS, FIELDS_BY_NAME, FIELD_TABLE, FieldSpec, Settings, SettingValue } from './fields';
export { ENFORCED, KAFKAJS_ASSIGNORS, KafkajsOptions, kafkajsOptions, unhonoured } from './options';
export { parseProperties, readPropertiesFile, securityConfig, SecurityConfig } from './properties';
export { limitBatches, sliceBatch } from './batches';
export * from './kafka';
export {
  BatchMetrics, ConfigSource, ConsumerConfigLoader, ConsumerSettings, CreateConsumerOptions, LoaderOptions, Logger,
  ConsumerInfo, OptimizedConsumer, PoolLike, REPORT_INTERVAL_MS, createOptimizedConsumer, defaultCacheDir,
} from './loader';
export { CHANNEL, ConfigChange, ListenClientLike, Listener, ReloadClass, changeBetween, reloadClass } from './live';
