import { MsgHdrsImpl, type MsgHdrs } from '@nats-io/nats-core';

/**
 * A NATS header block encoded once. nats.js sends a message's headers by calling `encode()` on
 * them and nothing else (protocol.ts `publish`), so headers sent many times (a constant block) or
 * measured before they are sent (the publisher's size check) are encoded once instead of on every
 * send. Nothing can be added to it: the confirmer's `msgId` and `expect*` options must not be
 * combined with it (they would throw).
 */
class EncodedHeaders {
  constructor(private readonly block: Uint8Array) {}

  encode(): Uint8Array {
    return this.block;
  }
}

/** A header block encoded already, as headers nats.js sends. */
export function preEncoded(block: Uint8Array): MsgHdrs {
  return new EncodedHeaders(block) as unknown as MsgHdrs;
}

/** `headers` with their block encoded now, and its size in bytes (what NATS counts against max_payload). */
export function encodeOnce(headers: MsgHdrs): { headers: MsgHdrs; bytes: number } {
  if (!(headers instanceof MsgHdrsImpl)) return { headers, bytes: 0 };
  const block = headers.encode();
  return { headers: preEncoded(block), bytes: block.length };
}
