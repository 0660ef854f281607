import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TlsOptions } from '@nats-io/nats-core';

/**
 * Why TLS to a NATS server fails, when nats.js cannot say. With TLS 1.3 a server refuses a
 * client certificate (or its absence) only after the client's side of the handshake is done;
 * nats.js then waits for the server's PONG until its connect timeout and reports "timeout".
 * The probe repeats what nats.js does (read INFO, upgrade to TLS as nats.js would, send CONNECT
 * and PING) and returns the TLS error the socket reports, or undefined when it learned nothing.
 */
export async function probeTls(server: string, tls: TlsOptions | undefined, timeoutMs: number): Promise<Error | undefined> {
  const { hostname, port } = hostPort(server);
  const socket = netConnect(port, hostname);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  try {
    const info = await firstLine(socket);
    const match = /^INFO\s+(\{.*\})/.exec(info);
    if (!match) return undefined;
    const { tls_required: required, tls_available: available } = JSON.parse(match[1]!) as { tls_required?: boolean; tls_available?: boolean };
    // nats.js upgrades when the server requires TLS, or offers it and TLS is not turned off.
    if (!required && !(available && tls)) return undefined;
    return await handshake(socket, hostname, tls ?? {});
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

function hostPort(server: string): { hostname: string; port: number } {
  const url = new URL(`nats://${server.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')}`);
  return { hostname: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 4222) };
}

function firstLine(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end !== -1) {
        socket.off('data', onData);
        // Nothing else arrives before the client speaks; pause so TLS can take the socket over.
        socket.pause();
        resolve(text.slice(0, end));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before INFO')));
  });
}

function handshake(socket: Socket, hostname: string, tls: TlsOptions): Promise<Error | undefined> {
  return new Promise((resolve) => {
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
    const secure = tlsConnect({ socket, host: hostname, rejectUnauthorized: true, ca: tls.ca, cert: tls.cert, key: tls.key }, () => {
      secure.write('CONNECT {"verbose":false,"pedantic":false,"tls_required":true,"lang":"asyncfn-tls-probe"}\r\nPING\r\n');
    });
    // Any answer (PONG, or -ERR for missing credentials) means TLS itself was accepted.
    secure.once('data', () => resolve(undefined));
    secure.once('error', (err: Error) => resolve(err));
    secure.once('close', () => resolve(undefined));
  });
}
