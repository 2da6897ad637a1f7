// Caps the linear memory of a core wasm module before it is compiled: the
// maximum of every memory the module defines is rewritten so that their sum
// stays under the budget, and V8 then makes `memory.grow` fail past it.
// (V8's own heap limits do not cover wasm memory.) Hand-written because it is
// a few dozen lines over the binary format and no maintained npm library
// rewrites limits in place.

const PAGE = 65536;

function readLeb(bytes: Uint8Array, pos: number): [value: number, next: number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos++];
    if (b === undefined) throw new Error('truncated module');
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7;
    if (shift > 35) throw new Error('LEB128 too long');
  }
}

function leb(value: number): number[] {
  const out: number[] = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return out;
}

/** Returns the module with each defined memory's maximum capped so that all of them fit in `maxBytes`. */
export function capMemory(module: Uint8Array, maxBytes: number): Uint8Array {
  if (module.length < 8 || module[0] !== 0 || module[1] !== 0x61 || module[2] !== 0x73 || module[3] !== 0x6d) throw new Error('not a core wasm module');
  // Sections other than the memory section are copied as they are, in runs.
  const chunks: Uint8Array[] = [];
  let copyFrom = 0;
  let pos = 8;
  while (pos < module.length) {
    const id = module[pos]!;
    const [size, start] = readLeb(module, pos + 1);
    const end = start + size;
    if (end > module.length) throw new Error('truncated section');
    if (id !== 5) {
      pos = end;
      continue;
    }
    let [count, p] = readLeb(module, start);
    const budgetPages = Math.floor(maxBytes / PAGE / Math.max(1, count));
    const body: number[] = leb(count);
    for (let i = 0; i < count; i++) {
      const flags = module[p++]!;
      if (flags & 0x04) throw new Error('64-bit memories are not supported');
      if (flags & ~0x03) throw new Error(`unsupported memory limits flags 0x${flags.toString(16)}`);
      let min: number;
      [min, p] = readLeb(module, p);
      let max = Infinity;
      if (flags & 0x01) [max, p] = readLeb(module, p);
      if (min > budgetPages) throw new Error(`the module's memory starts at ${min * PAGE} bytes, over the driver's memory cap of ${budgetPages * PAGE}`);
      body.push(flags | 0x01, ...leb(min), ...leb(Math.min(max, budgetPages)));
    }
    if (p !== end) throw new Error('malformed memory section');
    chunks.push(module.subarray(copyFrom, pos), new Uint8Array([5, ...leb(body.length), ...body]));
    copyFrom = end;
    pos = end;
  }
  chunks.push(module.subarray(copyFrom));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
