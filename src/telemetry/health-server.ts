import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthChecks {
  /** Alive and connected to NATS. */
  healthy(): boolean;
  /** Ready for work: connected and every consumer bound. */
  ready(): boolean;
}

export interface HealthServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The worker's small HTTP server for Kubernetes probes and Prometheus: `/healthz`, `/readyz`,
 * `/metrics`. node:http is enough for three routes and keeps the worker light.
 */
export async function startHealthServer(opts: { host: string; port: number; registry: Registry; checks: HealthChecks }): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('use GET\n');
      return;
    }
    const probe = (ok: boolean, failure: string): void => {
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(ok ? 'OK\n' : `${failure}\n`);
    };
    switch (path) {
      case '/healthz':
        return probe(opts.checks.healthy(), 'not connected to NATS');
      case '/readyz':
        return probe(opts.checks.ready(), 'not ready: NATS disconnected or consumers not bound');
      case '/metrics':
        opts.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${String(err)}\n`),
        );
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`no route for ${path}\n`);
    }
  });
  server.listen(opts.port, opts.host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
