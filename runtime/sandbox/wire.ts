// The framing between the host and a driver's sandbox process: each message is
// a 4-byte big-endian length and that many bytes of JSON. Values that JSON
// cannot carry as they are (bigint, bytes, undefined inside lists) are tagged,
// so the contract's values cross unchanged.

/** Largest frame either side accepts. */
export const maxFrameBytes = 16 * 1024 * 1024;

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return { $big: value.toString() };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value === undefined) return { $undef: 1 };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    const keys = Object.keys(v);
    if (keys.length === 1) {
      if (typeof v.$big === 'string' && /^-?\d{1,40}$/.test(v.$big)) return BigInt(v.$big);
      if (typeof v.$bytes === 'string') return new Uint8Array(Buffer.from(v.$bytes, 'base64'));
      if (v.$undef === 1) return undefined;
    }
  }
  return value;
}

/**
 * Host interfaces whose calls are one-way: the sandbox sends them and goes on,
 * the host answers nothing. Only `wasmnet:host/log`, which returns nothing and
 * cannot fail; a driver that logs in a loop still waits for the pipe.
 */
export function isOneWay(iface: string): boolean {
  return iface.startsWith('wasmnet:host/log@');
}

export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message, replacer), 'utf8');
  if (body.length > maxFrameBytes) throw new Error(`message of ${body.length} bytes is over the ${maxFrameBytes}-byte limit`);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

export function decodeBody(body: Buffer): unknown {
  return JSON.parse(body.toString('utf8'), reviver);
}

/**
 * Reassembles frames from a byte stream (the parent's side, asynchronous).
 * `limit` bounds one frame; a larger one is reported through `onOversize`
 * instead of being buffered.
 */
export class FrameReader {
  private buffered: Buffer[] = [];
  private size = 0;
  private readonly limit: number;
  private readonly onFrame: (message: unknown) => void;
  private readonly onOversize: (bytes: number) => void;
  /** Set by an oversized frame: what follows it cannot be framed any more (its sender is killed). */
  private broken = false;

  constructor(limit: number, onFrame: (message: unknown) => void, onOversize: (bytes: number) => void) {
    this.limit = limit;
    this.onFrame = onFrame;
    this.onOversize = onOversize;
  }

  push(chunk: Buffer): void {
    // The rest of an oversized frame would be read as frames of its own.
    if (this.broken) return;
    this.buffered.push(chunk);
    this.size += chunk.length;
    for (;;) {
      if (this.size < 4) return;
      const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
      this.buffered = [all];
      const length = all.readUInt32BE(0);
      if (length > this.limit) {
        this.buffered = [];
        this.size = 0;
        this.broken = true;
        this.onOversize(length);
        return;
      }
      if (all.length < 4 + length) return;
      const body = all.subarray(4, 4 + length);
      const rest = all.subarray(4 + length);
      this.buffered = rest.length > 0 ? [rest] : [];
      this.size = rest.length;
      this.onFrame(decodeBody(body));
    }
  }
}
