/**
 * Names other OpenFaaS queue-workers use for settings asyncfn has, and names of settings asyncfn
 * deliberately does not have. Checked against the OpenFaaS Pro JetStream queue-worker's
 * environment in the faas-netes Helm charts (chart/queue-worker/templates/deployment.yaml and
 * chart/openfaas/templates/queueworker-dep.yaml) and the CE queue-worker's README.
 */

/**
 * OpenFaaS Pro JetStream queue-worker names that mean exactly what an asyncfn variable means,
 * with the same values: alias → asyncfn's name. An alias is read wherever the name is (the
 * environment and the config file). Setting both to different values is a config error.
 */
export const OPENFAAS_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  nats_host: 'faas_nats_address',
  nats_port: 'faas_nats_port',
  nats_stream_replicas: 'stream_replication',
  retry_http_codes: 'http_retry_codes',
  // Both take console or json.
  log_encoding: 'log_format',
  // faas_gateway_address also takes a full base URL, which is what gateway_url holds.
  gateway_url: 'faas_gateway_address',
});

/** A known OpenFaaS name asyncfn does not read, and what to do instead. */
export interface UnsupportedName {
  /** What to use instead, or why nothing is needed; continues "<name> is not read: ". */
  readonly hint: string;
  /** True for a value that means what asyncfn does anyway (given the other variables): no warning. */
  readonly harmless?: (value: string, env: Readonly<Record<string, string | undefined>>) => boolean;
}

/** The queue names `queues` lists (`name[:max_inflight[:upstream_timeout]],...`), read loosely: only to tell a harmless value. */
function listedQueues(env: Readonly<Record<string, string | undefined>>): string[] {
  return (env['queues'] ?? '').split(',').map((item) => item.split(':')[0]!.trim());
}

/**
 * OpenFaaS queue-worker names (Pro JetStream and CE NATS Streaming) with no asyncfn equivalent of
 * the same meaning. Set, they get a startup warning instead of being silently ignored.
 */
export const OPENFAAS_UNSUPPORTED: Readonly<Record<string, UnsupportedName>> = Object.freeze({
  nats_stream: {
    hint: "a queue's stream is named after it: faas-request for the default queue, <name> for each queue of queues (set queues=<name> to serve a named queue)",
    harmless: (value, env) => value === 'faas-request' || listedQueues(env).includes(value),
  },
  nats_durable: {
    hint: "a queue's durable consumer is <queue>-workers: faas-workers for the default queue",
    harmless: (value, env) => value === 'faas-workers' || listedQueues(env).some((queue) => value === `${queue}-workers`),
  },
  queue_name: { hint: 'use queues=<name> to serve a named queue' },
  queue_partitions: { hint: 'asyncfn has no queue partitions; scale workers by replicas' },
  filter_partition: { hint: 'asyncfn has no queue partitions; scale workers by replicas' },
  scaling_mode: { hint: 'asyncfn has one mode: max_inflight per worker, per queue with queues' },
  max_waiting: { hint: 'the worker pulls only as many messages as it has free slots, so it needs no max_waiting' },
  consumer_inactive_threshold: { hint: 'asyncfn uses one durable consumer per queue' },
  consumer_pull_max_messages: { hint: 'the worker pulls only as many messages as it has free slots' },
  limiter_enabled: { hint: 'use adaptive_concurrency (on by default): a function answering 429 is throttled, not failed' },
  default_function_name: { hint: 'use function_namespace for names without a namespace' },
  tls_insecure: { hint: 'asyncfn always verifies TLS certificates' },
  debug: { hint: 'use log_level=debug' },
  print_request_body: { hint: 'use write_debug=true' },
  print_response_body: { hint: 'use write_debug=true' },
  faas_print_body: { hint: 'use write_debug=true' },
  faas_max_reconnect: { hint: 'asyncfn reconnects to NATS for as long as it runs' },
  faas_reconnect_delay: { hint: 'asyncfn reconnects to NATS for as long as it runs' },
  faas_nats_cluster_name: { hint: 'a NATS Streaming setting; asyncfn uses JetStream' },
  faas_nats_channel: { hint: 'a NATS Streaming setting; the stream is always faas-request' },
  faas_function_suffix: { hint: 'use function_url_template' },
});
