import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/**
 * Metrics of `gateway_processes` > 1 (node:cluster): each process counts in its own registry, and
 * a scrape reaches whichever process the primary hands the connection to. So a process asked for
 * `/metrics` asks the primary, which gathers every process's registry (prom-client's
 * AggregatorRegistry: counters and histograms summed by label set) and sends the text back: a
 * Prometheus scraping one Service sees the gateway's totals, whichever process answers. The
 * messages go over the cluster's IPC channel, once per scrape; a request never uses it.
 */

const REQUEST = 'asyncfn:metrics-request';
const RESPONSE = 'asyncfn:metrics-response';

interface MetricsRequest {
  readonly type: typeof REQUEST;
  readonly id: number;
}

type MetricsResponse = { readonly type: typeof RESPONSE; readonly id: number } & ({ readonly text: string } | { readonly error: string });

function isMessage<T extends { type: string }>(message: unknown, type: T['type']): message is T {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}

/**
 * In the primary: answers each process's request with the metrics of all the processes. Returns
 * the function that stops answering.
 */
export function serveClusterMetrics(): () => void {
  const aggregator = new AggregatorRegistry();
  const answer = (worker: { isConnected(): boolean; send(message: MetricsResponse): boolean }, message: unknown): void => {
    if (!isMessage<MetricsRequest>(message, REQUEST)) return;
    const reply = (response: MetricsResponse): void => {
      if (worker.isConnected()) worker.send(response);
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ type: RESPONSE, id: message.id, text }),
      (err: unknown) => reply({ type: RESPONSE, id: message.id, error: err instanceof Error ? err.message : String(err) }),
    );
  };
  cluster.on('message', answer);
  return () => cluster.off('message', answer);
}

/**
 * In a process of the cluster: offers `registry` to the primary's gatherings, and returns the
 * reader of every process's metrics (through the primary; rejects past `timeoutMs`).
 */
export function clusterMetricsReader(registry: Registry, timeoutMs = 10_000): () => Promise<string> {
  // Its constructor makes this process answer the primary's requests for its registries.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  const waiting = new Map<number, (response: MetricsResponse) => void>();
  let next = 0;
  process.on('message', (message: unknown) => {
    if (isMessage<MetricsResponse>(message, RESPONSE)) waiting.get(message.id)?.(message);
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`the gateway's primary process did not send the metrics within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(id, (response) => {
        clearTimeout(timer);
        waiting.delete(id);
        if ('text' in response) resolve(response.text);
        else reject(new Error(`the gateway's primary process could not gather the metrics: ${response.error}`));
      });
      process.send!({ type: REQUEST, id } satisfies MetricsRequest);
    });
}
