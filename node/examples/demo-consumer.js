#!/usr/bin/env node
// A Node service built by @loomctl/consumer-config, as `make demo` runs it: geocoding-processor
// (io-bound profile: batches of 10) reading the demo's accelerometer topic, each message a short
// "API call", each slice's time, size and failures recorded in consumer_processing_metrics.
//
//   npm run build && LOOM_DATABASE_URL=... LOOM_KAFKA_BOOTSTRAP_SERVERS=... node examples/demo-consumer.js
//
// DEMO_SERVICE, DEMO_TOPIC and DEMO_MESSAGE_MS change the service, the topic and the time per message.
// It runs until SIGTERM or Ctrl-C, then prints what it consumed.
'use strict';

const { Pool } = require('pg');
const { logLevel } = require('kafkajs');
const { ConsumerConfigLoader } = require('../dist');

const service = process.env.DEMO_SERVICE || 'geocoding-processor';
const topic = process.env.DEMO_TOPIC || 'device.sensor.accelerometer.raw';
const messageMs = Number(process.env.DEMO_MESSAGE_MS || 2);

async function main() {
  if (!process.env.LOOM_DATABASE_URL) throw new Error('LOOM_DATABASE_URL is not set (eval "$(loomctl dev env)")');
  const pool = new Pool({ connectionString: process.env.LOOM_DATABASE_URL, max: 2 });
  const loader = new ConsumerConfigLoader(pool);
  const started = performance.now();
  // Brokers from LOOM_KAFKA_BOOTSTRAP_SERVERS (or bootstrap.servers of LOOM_KAFKA_CONFIG), as the Python loader.
  const consumer = await loader.createConsumer(service, [topic], { logLevel: logLevel.ERROR }, { trackBatches: true });
  const figures = { messages: 0, batches: 0, largest: 0, firstBatchMs: null };
  await consumer.run({
    eachBatch: async ({ batch }) => {
      figures.firstBatchMs ??= Math.round(performance.now() - started);
      figures.batches += 1;
      figures.messages += batch.messages.length;
      figures.largest = Math.max(figures.largest, batch.messages.length);
      await new Promise((resolve) => setTimeout(resolve, messageMs * batch.messages.length));
    },
  });
  const { settings } = consumer.loomctl;
  console.error(`${service}: consuming ${topic} as group ${settings.consumerGroupId} ` +
    `(max_poll_records=${settings.maxPollRecords}, config ${settings.source} version ${settings.version ?? '-'})`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await consumer.disconnect();
    await pool.end();
    console.log(`${service} (Node): ${figures.messages} messages in ${figures.batches} batches, ` +
      `largest ${figures.largest} (max_poll_records ${settings.maxPollRecords}), first batch after ${figures.firstBatchMs ?? '-'} ms`);
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => {
  console.error(`${service}: ${error.message}`);
  process.exit(error.code === 'NOT_FOUND' || error.code === 'BAD_INPUT' ? 2 : 1);
});
