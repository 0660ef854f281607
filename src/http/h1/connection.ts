import type { IncomingHttpHeaders } from 'node:http';
import { connect, type LookupFunction, type Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { PlainOrigin } from './request-head.js';
import { ConnectionClosedError, ConnectTimeoutError } from './errors.js';
import { ResponseParser, type ResponseSink } from './response-parser.js';

/** One request for a connection: its head (./request-head.ts), its body and undici's handler. */
export interface Http1Request {
  readonly head: string;
  readonly body: Uint8Array | null;
  readonly handler: Dispatcher.DispatchHandler;
}

/** What a connection tells its pool. */
export interface ConnectionOwner {
  /** The response was read and the connection may carry another request. */
  reusable(connection: Http1Connection, keepAliveHintMs: number | undefined): void;
  /** The connection is gone (or was never made); it carries nothing more. */
  gone(connection: Http1Connection): void;
}

export interface ConnectionOptions {
  readonly lookup?: LookupFunction | undefined;
  readonly connectTimeoutMs: number;
  readonly maxHeaderBytes: number;
  /** Schedules a request's socket write (see HttpClientOptions.deferWrite); absent, it is written at once. */
  readonly deferWrite?: WriteScheduler | undefined;
}

/** Runs a socket write later (src/queue/write-batch.ts's `deferWrite`, for the worker). */
export type WriteScheduler = (write: () => void) => void;

/** Requests this large or smaller are written in one buffer with their head; larger bodies are written beside it. */
const COPY_BODY_MAX = 16 * 1024;

/**
 * One keep-alive TCP connection carrying one request at a time (no pipelining: a long function
 * call never holds up another). Each request gets its own {@link RequestController}, through which
 * the exchange aborts it; an abort of a request that is no longer the current one does nothing.
 */
export class Http1Connection implements ResponseSink {
  readonly #owner: ConnectionOwner;
  readonly #socket: Socket;
  readonly #parser: ResponseParser;
  readonly #deferWrite: WriteScheduler | undefined;
  #connected = false;
  #current: Http1Request | undefined = undefined;
  #controller: RequestController | undefined = undefined;
  #error: Error | undefined = undefined;
  #gone = false;
  /** When it last became idle (Date.now()), and for how long it may stay so. */
  idleSince = 0;
  keepAliveMs = 0;

  constructor(owner: ConnectionOwner, origin: PlainOrigin, opts: ConnectionOptions) {
    this.#owner = owner;
    this.#parser = new ResponseParser(this, opts.maxHeaderBytes);
    this.#deferWrite = opts.deferWrite;
    const socket = connect({
      host: origin.host,
      port: origin.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
    });
    this.#socket = socket;
    socket.setTimeout(opts.connectTimeoutMs, () => socket.destroy(new ConnectTimeoutError(opts.connectTimeoutMs)));
    socket.once('connect', () => {
      socket.setTimeout(0);
      this.#connected = true;
      const request = this.#current;
      // Cut while the connection was being opened: it is free for another request.
      if (request !== undefined && !this.#write(request)) this.#owner.reusable(this, undefined);
    });
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('error', (error: Error) => (this.#error ??= error));
    socket.on('close', () => this.#closed());
  }

  /**
   * Takes `request`: tells its handler it started (on a connection being opened, once it is open)
   * and writes it. False when the handler aborted it as it started: nothing was written, and the
   * connection is free for another.
   */
  start(request: Http1Request): boolean {
    this.#current = request;
    this.#parser.reset(this);
    if (!this.#connected) return true;
    return this.#write(request);
  }

  #write(request: Http1Request): boolean {
    const controller = new RequestController(this);
    this.#controller = controller;
    request.handler.onRequestStart?.(controller, {});
    if (controller.aborted) return false;
    controller.started = true;
    const { head, body } = request;
    const socket = this.#socket;
    if (body === null || body.byteLength === 0) {
      this.#send(head);
    } else if (body.byteLength <= COPY_BODY_MAX) {
      // latin1: one byte per character.
      const headLength = head.length;
      const bytes = Buffer.allocUnsafe(headLength + body.byteLength);
      bytes.write(head, 0, headLength, 'latin1');
      bytes.set(body, headLength);
      this.#send(bytes);
    } else {
      // A large body (one that did not go to the payload bucket) is written at once, beside its head.
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(body);
      socket.uncork();
    }
    return true;
  }

  /**
   * Writes a request held in memory, at once or in the process's write batch. Deferred, it is
   * written only if the connection still stands by then: a request aborted meanwhile has retired
   * it (`abort`), and nothing is sent.
   */
  #send(data: Buffer | string): void {
    const socket = this.#socket;
    if (this.#deferWrite === undefined) {
      write(socket, data);
      return;
    }
    this.#deferWrite(() => {
      if (!socket.destroyed) write(socket, data);
    });
  }

  /** Closes it (idle, or on the client's destruction); a request on it fails with `reason`. */
  destroy(reason?: Error): void {
    if (reason !== undefined) this.#error ??= reason;
    this.#socket.destroy();
  }

  /** The controller's abort: cuts the request if it is still the current one. */
  abort(controller: RequestController, reason: Error): void {
    if (this.#controller !== controller || this.#current === undefined) return;
    const request = this.#current;
    this.#current = undefined;
    this.#controller = undefined;
    // Written, perhaps partly answered: the connection cannot carry another request.
    if (controller.started) this.#retire();
    request.handler.onResponseError?.(controller, reason);
  }

  head(status: number, statusText: string, headers: IncomingHttpHeaders): void {
    this.#current?.handler.onResponseStart?.(this.#controller!, status, headers, statusText);
  }

  data(chunk: Buffer): void {
    this.#current?.handler.onResponseData?.(this.#controller!, chunk);
  }

  #read(chunk: Buffer): void {
    const request = this.#current;
    if (request === undefined) {
      // Bytes nobody asked for (on an idle connection, or after an aborted request's): it cannot be trusted again.
      this.#socket.destroy();
      return;
    }
    let consumed: number;
    try {
      consumed = this.#parser.execute(chunk);
    } catch (error) {
      this.#fail(error as Error);
      return;
    }
    if (this.#current !== request) return;
    if (this.#parser.done) this.#complete(request, consumed === chunk.length);
  }

  #complete(request: Http1Request, clean: boolean): void {
    const controller = this.#controller!;
    const { reusable, keepAliveHintMs } = this.#parser.end;
    this.#current = undefined;
    this.#controller = undefined;
    if (reusable && clean && !this.#gone) this.#owner.reusable(this, keepAliveHintMs);
    else this.#retire();
    request.handler.onResponseEnd?.(controller, {});
  }

  #fail(error: Error): void {
    const request = this.#current;
    const controller = this.#controller ?? new RequestController(this);
    this.#current = undefined;
    this.#controller = undefined;
    this.#retire();
    request?.handler.onResponseError?.(controller, error);
  }

  /** Closes the socket and tells the pool, once. */
  #retire(): void {
    this.#socket.destroy();
    if (this.#gone) return;
    this.#gone = true;
    this.#owner.gone(this);
  }

  #closed(): void {
    const request = this.#current;
    if (request !== undefined && this.#parser.finish()) {
      this.#complete(request, true);
      return;
    }
    if (request !== undefined) this.#fail(this.#error ?? new ConnectionClosedError(!this.#parser.idle));
    else this.#retire();
  }
}

/** A request's bytes onto the socket: a head alone is a string, one byte per character. */
function write(socket: Socket, data: Buffer | string): void {
  if (typeof data === 'string') socket.write(data, 'latin1');
  else socket.write(data);
}

/** The handle undici's handler API gives a request's handler: aborting it cuts the request. */
export class RequestController implements Dispatcher.DispatchController {
  readonly #connection: Http1Connection;
  #reason: Error | null = null;
  /** Set once the request was handed to the socket (after its handler's onRequestStart). */
  started = false;

  constructor(connection: Http1Connection) {
    this.#connection = connection;
  }

  get aborted(): boolean {
    return this.#reason !== null;
  }

  get reason(): Error | null {
    return this.#reason;
  }

  get paused(): boolean {
    return false;
  }

  /** Reading is never paused: the exchange keeps the whole body. */
  pause(): void {}

  resume(): void {}

  abort(reason: Error): void {
    if (this.#reason !== null) return;
    this.#reason = reason;
    this.#connection.abort(this, reason);
  }
}
