// The path the guide imports from (`./services/consumerConfigLoader`), so its snippet runs verbatim.
export * from '@loomctl/consumer-config';
