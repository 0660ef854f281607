/**
 * Every span attribute key asyncfn writes (BullMQ `TelemetryAttributes`). The standard ones follow
 * the OpenTelemetry semantic conventions (messaging, FaaS, HTTP); a unit test checks them against
 * `@opentelemetry/semantic-conventions`. Ours are under `asyncfn.`.
 */
export const TelemetryAttributes = {
  /** Always "nats". */
  messagingSystem: 'messaging.system',
  /** The subject an invocation is published to. */
  messagingDestinationName: 'messaging.destination.name',
  /** The invocation's call id (it is also the message's identity). */
  messagingMessageId: 'messaging.message.id',
  /** "publish" on the gateway, "process" on the worker. */
  messagingOperationType: 'messaging.operation.type',
  messagingOperationName: 'messaging.operation.name',
  /** The function's name (without namespace). */
  faasInvokedName: 'faas.invoked_name',
  httpRequestMethod: 'http.request.method',
  httpResponseStatusCode: 'http.response.status_code',
  /** The gateway's route template, e.g. `/async-function/*`. */
  httpRoute: 'http.route',
  urlPath: 'url.path',
  /** Outgoing URL with credentials and query values redacted. */
  urlFull: 'url.full',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  /** Why a span failed: an error code, "timeout", or the HTTP status as a string. */
  errorType: 'error.type',
  callId: 'asyncfn.call_id',
  /** Function namespace (OpenFaaS). */
  namespace: 'asyncfn.namespace',
  /** 1-based attempt of the function call. */
  attempt: 'asyncfn.attempt',
  /** The queue (stream) an invocation is routed to or pulled from. */
  queue: 'asyncfn.queue',
} as const;

export type TelemetryAttribute = (typeof TelemetryAttributes)[keyof typeof TelemetryAttributes];

/** `messaging.system` of every messaging span. */
export const MESSAGING_SYSTEM = 'nats';
