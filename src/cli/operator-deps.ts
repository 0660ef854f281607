import type { NatsAuthConfig, NatsTlsConfig } from '../config/index.js';

/** What every operator command (`asyncfn dlq`, `status`, `queues`) gets from its caller. */
export interface OperatorCommandDeps {
  /** One or more comma-separated NATS server URLs; "" when none is configured (an error, after argument checks). */
  readonly natsUrl: string;
  /** NATS credentials and TLS files (config.nats.auth and .tls); none by default. */
  readonly natsAuth?: NatsAuthConfig;
  readonly natsTls?: NatsTlsConfig;
  /** Results (stdout). */
  readonly out: (line: string) => void;
  /** Warnings, progress and errors (stderr). */
  readonly err: (line: string) => void;
  /** Raw writes to stderr when it is a terminal, for progress bars redrawn in place; absent otherwise. */
  readonly tty?: ((chunk: string) => void) | undefined;
  /** Unix ms; default Date.now. Anchors relative times (`--since 1h`, "enqueued 5m ago", ages). */
  readonly now?: () => number;
}
