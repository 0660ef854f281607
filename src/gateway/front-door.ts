/**
 * The gateway's front door: every connection is read here first, and the common async request
 * (`POST /async-function/<name>`, a Content-Length body, plain headers) is answered without
 * node's HTTP machinery. The first request on a connection that is anything else hands the
 * connection, with every byte read from it, to node:http, which serves it and every later request
 * on it as before (fastify's routes, fast-enqueue.ts's taker, node's own refusals).
 *
 * Why: node:http's parser, IncomingMessage and ServerResponse cost 12–20 µs of CPU per `202`, a
 * sixth to a quarter of what the gateway spends on one (BENCHMARKS.md, "The front door on the raw
 * socket").
 * The request is read by a strict subset of HTTP/1.1 (src/http/h1/simple-request.ts) that node's
 * parser reads the same way, and answered by the same functions as on node:http (fast-enqueue.ts).
 *
 * What node:http does for a connection, the front door does for its own:
 * - one request at a time: a pipelined request waits in the buffer until the one before it is
 *   answered, so answers go out in order (and reading pauses past 64 KiB of them);
 * - `read_timeout` (`server.requestTimeout`, and `headersTimeout` for the head): a request not
 *   all in within it is answered 408 and the connection closed; the keep-alive timeout closes a
 *   connection idle between requests (in place of `write_timeout` there, as node's does, and never
 *   before the `Keep-Alive: timeout` its answers name); `write_timeout` (`server.timeout`) closes
 *   a socket with no traffic either way otherwise. All three are checked by one sweep a second
 *   for all connections: no socket timer to refresh on every read and write, as node's
 *   `socket.setTimeout` does.
 * - shutdown: `closeIdleConnections` and `closeAllConnections` (fastify's `forceCloseConnections`,
 *   `server.close`) close the front door's idle connections too, and a busy one closes after its
 *   answer (`Connection: close`);
 * - writes: pause reading while the socket's write buffer is past its high-water mark.
 */
import { STATUS_CODES, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { BadRequestError, RequestTimeoutError } from '../errors.js';
import { MORE, NOT_SIMPLE, readSimpleRequestHead, type SimpleRequestHead } from '../http/h1/simple-request.js';
import { isFieldValue, isToken } from '../http/fields.js';
import { ASYNC_PREFIX } from './enqueue-http.js';
import type { FastEnqueue } from './fast-enqueue.js';
import { writeRawError, type ResponseWriter } from './http-errors.js';

export interface FrontDoorOptions {
  /** The async request's taker; undefined until the routes are registered (every request goes to node:http meanwhile). */
  readonly enqueue: () => FastEnqueue | undefined;
  /** `max_header_size`: a longer head goes to node:http, which answers 431. */
  readonly maxHeaderBytes: number;
}

/** What the front door shows of itself (tests, the bench). */
export interface FrontDoor {
  /** Connections the front door reads now (not handed to node:http, not closed). */
  readonly connections: number;
  /** Connections handed to node:http since the start. */
  readonly handedOver: number;
}

/** Pipelined bytes kept while a request is answered before reading pauses. */
const PIPELINE_BYTES = 64 * 1024;
const SWEEP_MS = 1_000;

const enum Phase {
  /** Between requests: nothing of the next one read yet. */
  Idle,
  /** Part of a head read. */
  Head,
  /** The head read and taken; part of the body read. */
  Body,
  /** The whole request read; its answer not yet written. */
  Answering,
  /** Handed to node:http, or closed: the front door no longer touches it. */
  Gone,
}

/** Installs the front door on `server`: call before it listens. */
export function installFrontDoor(server: Server, opts: FrontDoorOptions): FrontDoor {
  const door = new Door(server, opts);
  return {
    get connections() {
      return door.live.size;
    },
    get handedOver() {
      return door.handedOver;
    },
  };
}

/** The state all of a server's front-door connections share. */
class Door {
  readonly live = new Set<Connection>();
  handedOver = 0;
  /** Seconds swept since the start: the connections' clock, read without a system call. */
  tick = 0;
  /** Set by closeIdleConnections: every connection closes after its answer. */
  closing = false;
  readonly #nodeListeners: ReadonlyArray<(socket: Socket) => void>;
  readonly #sweep: NodeJS.Timeout;

  constructor(
    readonly server: Server,
    readonly opts: FrontDoorOptions,
  ) {
    // node:http's own connection listener reads every socket it is called with; it is called
    // from here instead, for the connections the front door hands over.
    this.#nodeListeners = server.listeners('connection') as Array<(socket: Socket) => void>;
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      // node counts requests per socket for maxRequestsPerSocket; the front door does not.
      if (server.maxRequestsPerSocket) this.handOver(socket, undefined, false);
      else this.live.add(new Connection(this, socket));
    });
    const closeIdle = server.closeIdleConnections.bind(server);
    server.closeIdleConnections = () => {
      closeIdle();
      this.closing = true;
      for (const connection of this.live) connection.closeIfIdle();
    };
    const closeAll = server.closeAllConnections.bind(server);
    server.closeAllConnections = () => {
      closeAll();
      this.closing = true;
      for (const connection of this.live) connection.socket.destroy();
    };
    this.#sweep = setInterval(() => this.sweep(), SWEEP_MS).unref();
    server.on('close', () => clearInterval(this.#sweep));
  }

  handOver(socket: Socket, pending: Buffer | undefined, peerEnded: boolean): void {
    this.handedOver += 1;
    for (const listener of this.#nodeListeners) listener.call(this.server, socket);
    // node's listener now reads the socket; what was read before is the start of what it reads,
    // and a FIN already read is its end (node then ends the connection as it does for its own).
    if (pending !== undefined) socket.emit('data', pending);
    if (peerEnded) socket.emit('end');
  }

  /** Closes connections past their keep-alive, request or write timeouts (node:http's own, read now: fastify sets them after install). */
  sweep(): void {
    this.tick += 1;
    const { keepAliveTimeout, requestTimeout, headersTimeout, timeout } = this.server;
    const keepAlive = ticks(keepAliveTimeout);
    const request = ticks(requestTimeout);
    const head = Math.min(request, ticks(headersTimeout));
    const silent = ticks(timeout);
    for (const connection of this.live) connection.sweep(this.tick, keepAlive, head, request, silent);
  }
}

/** Whole sweeps in `ms` (at least one); no limit for 0. */
function ticks(ms: number): number {
  return ms > 0 ? Math.max(1, Math.ceil(ms / SWEEP_MS)) : Infinity;
}

/** One connection read by the front door: the requests it reads, and the response writer for the one being answered. */
class Connection implements ResponseWriter {
  #phase = Phase.Idle;
  /** Read and not yet taken: part of a head, or requests pipelined behind the one answered. */
  #buf: Buffer | undefined;
  /** Bytes of #buf already searched for the head's end. */
  #scanned = 0;
  /** The tick the current phase began (idle since, request since). */
  #since: number;
  /** The tick of the last read or write (write_timeout: no traffic either way). */
  #active: number;
  #head: SimpleRequestHead | undefined;
  readonly #chunks: Buffer[] = [];
  #received = 0;
  /** When the head being answered was read (performance.now()), for the request's duration. */
  #startedAt = 0;
  #status = 0;
  #headers: string | undefined;
  #driving = false;
  /** A request was answered: idle now is between requests, where the keep-alive timeout applies. */
  #answered = false;
  /** The peer sent its FIN: close once the request being answered is. */
  #peerEnded = false;
  readonly #onData = (chunk: Buffer): void => this.#read(chunk);
  readonly #onEnd = (): void => this.#ended();
  readonly #onClose = (): void => this.#gone();
  readonly #onError = (): void => void this.socket.destroy();
  readonly #onDrain = (): void => this.#resume();

  constructor(
    private readonly door: Door,
    readonly socket: Socket,
  ) {
    this.#since = door.tick;
    this.#active = door.tick;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    socket.on('error', this.#onError);
    socket.on('drain', this.#onDrain);
  }

  // ---- reading -------------------------------------------------------------------------------

  #read(chunk: Buffer): void {
    this.#active = this.door.tick;
    switch (this.#phase) {
      case Phase.Body:
        this.#body(chunk);
        break;
      case Phase.Answering:
        this.#buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
        if (this.#buf.length > PIPELINE_BYTES) this.socket.pause();
        break;
      case Phase.Idle:
      case Phase.Head:
        this.#buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
        this.#drive();
        break;
      case Phase.Gone:
        break;
    }
  }

  /** Reads the requests in #buf, one at a time, until one is being answered or more bytes are needed. */
  #drive(): void {
    if (this.#driving) return;
    this.#driving = true;
    try {
      while (this.#buf !== undefined && (this.#phase === Phase.Idle || this.#phase === Phase.Head)) {
        if (this.#phase === Phase.Idle) {
          // Empty lines before a request are skipped, as llhttp skips them (RFC 9112 §2.2: some
          // clients send a CRLF after a POST's body).
          const blank = emptyLinesAt(this.#buf);
          if (blank === this.#buf.length) {
            this.#buf = undefined;
            if (this.#peerEnded) {
              // Its FIN came with them (while the request before was answered): nothing more comes.
              this.#phase = Phase.Gone;
              this.socket.end();
            }
            return;
          }
          if (blank > 0) this.#buf = this.#buf.subarray(blank);
          this.#phase = Phase.Head;
          this.#since = this.door.tick;
        }
        const reading = readSimpleRequestHead(this.#buf, ASYNC_PREFIX, this.door.opts.maxHeaderBytes, this.#scanned - 3);
        if (reading === MORE) {
          this.#scanned = this.#buf.length;
          if (this.#peerEnded) this.#endedWithinHead();
          return;
        }
        const enqueue = this.door.opts.enqueue();
        if (reading === NOT_SIMPLE || enqueue === undefined || !enqueue.accepts(reading)) {
          this.#handOver();
          return;
        }
        this.#scanned = 0;
        this.#head = reading;
        this.#startedAt = performance.now();
        this.#phase = Phase.Body;
        const rest = this.#buf.length > reading.headBytes ? this.#buf.subarray(reading.headBytes) : undefined;
        this.#buf = undefined;
        if (rest !== undefined) this.#body(rest);
        else if (reading.contentLength === 0) this.#answer(enqueue, Buffer.alloc(0));
        if (this.#phase === Phase.Body && this.#peerEnded) {
          // The peer's FIN came before this body's end: nobody to answer (node:http's 'aborted').
          this.#phase = Phase.Gone;
          this.socket.destroy();
        }
      }
    } finally {
      this.#driving = false;
    }
  }

  /** Bytes of the body being read; past its end, the next request's. */
  #body(chunk: Buffer): void {
    const needed = this.#head!.contentLength - this.#received;
    if (chunk.length > needed) {
      this.#buf = chunk.subarray(needed);
      chunk = chunk.subarray(0, needed);
    }
    this.#chunks.push(chunk);
    this.#received += chunk.length;
    if (this.#received < this.#head!.contentLength) return;
    // A copy, never a view over the socket's read buffer (as on node:http, fast-enqueue.ts).
    const body = this.#chunks.length === 1 ? Buffer.from(this.#chunks[0]!) : Buffer.concat(this.#chunks, this.#received);
    this.#chunks.length = 0;
    this.#received = 0;
    this.#answer(this.door.opts.enqueue()!, body);
  }

  #answer(enqueue: FastEnqueue, body: Buffer): void {
    this.#phase = Phase.Answering;
    // `answer` reads the head before it returns: the connection does not keep it while the PubAck
    // is awaited, so young collections do not copy it meanwhile (BENCHMARKS.md, "What a request in
    // flight holds").
    const head = this.#head!;
    this.#head = undefined;
    void enqueue.answer(head, body, this, this.#startedAt);
  }

  #handOver(): void {
    const { socket } = this;
    this.#phase = Phase.Gone;
    this.door.live.delete(this);
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onClose);
    socket.off('error', this.#onError);
    socket.off('drain', this.#onDrain);
    const pending = this.#buf;
    this.#buf = undefined;
    if (socket.isPaused()) socket.resume();
    this.door.handOver(socket, pending, this.#peerEnded);
  }

  // ---- writing (ResponseWriter, for fast-enqueue.ts) -----------------------------------------

  writeHead(status: number, headers: Record<string, string | number> | string[]): this {
    let lines = '';
    if (Array.isArray(headers)) {
      for (let i = 0; i < headers.length; i += 2) lines += headerLine(headers[i]!, String(headers[i + 1]));
    } else {
      for (const name in headers) lines += headerLine(name, String(headers[name]));
    }
    this.#status = status;
    this.#headers = lines;
    return this;
  }

  end(body?: string): this {
    if (this.#phase !== Phase.Answering) return this; // the peer is gone: nobody to answer
    this.#answered = true;
    // After the peer's FIN, or once the server is closing, the requests already read are still
    // answered (while closing, by node:http: accepts() refuses them, fastify answers 503); then close.
    const close = this.#buf === undefined && (this.#peerEnded || this.door.closing);
    const head =
      `HTTP/1.1 ${this.#status} ${STATUS_CODES[this.#status] ?? ''}\r\n${this.#headers ?? ''}Date: ${utcDate()}\r\n` +
      (close ? 'Connection: close\r\n\r\n' : keepAliveFields(this.door.server));
    this.#headers = undefined;
    // As node writes them: the head as latin1 alone, with a string body as UTF-8.
    const writable = body === undefined || body === '' ? this.socket.write(head, 'latin1') : this.socket.write(head + body, 'utf8');
    if (close) {
      this.#phase = Phase.Gone;
      this.socket.end();
      return this;
    }
    this.#phase = Phase.Idle;
    this.#since = this.door.tick;
    this.#active = this.door.tick;
    if (!writable)
      this.socket.pause(); // until 'drain'
    else if (this.socket.isPaused()) this.socket.resume();
    this.#drive();
    return this;
  }

  #resume(): void {
    if (this.#phase !== Phase.Answering && this.socket.isPaused()) this.socket.resume();
  }

  // ---- ends --------------------------------------------------------------------------------

  #ended(): void {
    this.#peerEnded = true;
    if (this.#phase === Phase.Answering) return; // closes after the answer
    if (this.#phase === Phase.Head) {
      this.#endedWithinHead();
      return;
    }
    // Between requests: close our side too. Within a body: nobody to answer (node:http's 'aborted').
    const withinBody = this.#phase === Phase.Body;
    this.#phase = Phase.Gone;
    if (withinBody) this.socket.destroy();
    else this.socket.end();
  }

  /** As node's parser does at an end within a head: 400, then close. */
  #endedWithinHead(): void {
    this.#phase = Phase.Gone;
    writeRawError(this.socket, new BadRequestError('malformed HTTP request: the connection ended within the request head'));
  }

  #gone(): void {
    this.#phase = Phase.Gone;
    this.#buf = undefined;
    this.#chunks.length = 0;
    this.door.live.delete(this);
  }

  closeIfIdle(): void {
    if (this.#phase === Phase.Idle && this.#buf === undefined) this.socket.destroy();
  }

  /**
   * Each limit is passed when more whole sweeps than it has gone by: a sweep later than node would
   * close, never earlier (a connection's clock starts within the sweep it began in).
   */
  sweep(tick: number, keepAlive: number, head: number, request: number, silent: number): void {
    const age = tick - this.#since;
    const idle = this.#phase === Phase.Idle && this.#buf === undefined;
    // Between requests the keep-alive timeout stands in for write_timeout, as on node:http: the
    // answer's `Keep-Alive: timeout=N` is a promise not to close sooner.
    if (idle && this.#answered && keepAlive !== Infinity) {
      if (age > keepAlive) this.socket.destroy();
      return;
    }
    // Past write_timeout with no traffic either way.
    if (tick - this.#active > silent) {
      this.socket.destroy();
      return;
    }
    if (idle) {
      if (age > keepAlive) this.socket.destroy();
    } else if (this.#phase === Phase.Head || this.#phase === Phase.Body) {
      if (age > (this.#phase === Phase.Head ? head : request)) {
        this.#phase = Phase.Gone;
        writeRawError(this.socket, new RequestTimeoutError());
      }
    }
  }
}

/** How many CR and LF bytes `buf` starts with. */
function emptyLinesAt(buf: Buffer): number {
  let at = 0;
  while (at < buf.length && (buf[at] === 0x0d || buf[at] === 0x0a)) at++;
  return at;
}

/** `name: value\r\n`, refused as node's `writeHead` refuses a header that would split the response. */
function headerLine(name: string, value: string): string {
  if (!isToken(name) || !isFieldValue(value)) throw new TypeError(`invalid response header ${JSON.stringify(name)}`);
  return `${name}: ${value}\r\n`;
}

/** The end of a head that keeps the connection, as node:http writes it (no Keep-Alive hint without a timeout). */
function keepAliveFields(server: Server): string {
  const seconds = Math.floor(server.keepAliveTimeout / 1000);
  return server.keepAliveTimeout > 0 ? `Connection: keep-alive\r\nKeep-Alive: timeout=${seconds}\r\n\r\n` : 'Connection: keep-alive\r\n\r\n';
}

let dateText = '';
let dateUntil = 0;

/** The `Date` header's value, made once a second (as node:http caches it). */
function utcDate(): string {
  const now = Date.now();
  if (now >= dateUntil) {
    dateText = new Date(now).toUTCString();
    dateUntil = now - (now % 1000) + 1000;
  }
  return dateText;
}
