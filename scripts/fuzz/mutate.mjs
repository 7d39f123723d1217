/**
 * Mutators for the fuzz harness: deterministic (a seeded PRNG), each returning a new buffer.
 * Byte-level mutations aim most of their edits at the first few KiB, where every format here
 * keeps what it parses (headers, pickles, chunk tables); the rest only changes weights or
 * samples. Format-aware mutations rewrite the JSON a file declares (safetensors headers,
 * hyperparameter files) with the values that broke readers before: huge, negative,
 * fractional, non-numeric and over-long ones.
 */

/** mulberry32: small, fast, good enough to pick mutations; the same seed gives the same cases. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (list) => list[Math.floor(next() * list.length)];
  return next;
}

const INTERESTING_U32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const INTERESTING_BYTES = [0, 1, 0x7f, 0x80, 0xff, 0x28, 0x5d, 0x7d, 0x4e, 0x2e]; // includes pickle's ( ] } N .

/** Absurd hyperparameter values: each of these made some reader hang, crash or allocate gigabytes. */
export const ABSURD_VALUES = [
  2 ** 31, 2 ** 31 - 1, 2 ** 53, 1e300, -1, 0, 0.5, -1e300, 1e9, 65536, 1 << 24,
  null, true, false, 'x', '', [], [2, 1e9, 1], [1e300], [-1, -1, -1], [0.5, 0.5, 0.5],
  Array.from({ length: 4096 }, () => 3), {}, { a: 1 },
];

function position(r, len) {
  // 70% in the first 4 KiB (or the whole buffer when it is smaller), the rest anywhere.
  const head = Math.min(len, 4096);
  return r() < 0.7 ? r.int(head) : r.int(len);
}

/** One random byte-level edit (or a few). */
export function mutateBytes(input, r) {
  const b = Buffer.from(input);
  if (b.length === 0) return Buffer.from([r.int(256)]);
  const kind = r.int(8);
  switch (kind) {
    case 0: { // flip 1-8 bits
      const n = 1 + r.int(8);
      for (let i = 0; i < n; i++) b[position(r, b.length)] ^= 1 << r.int(8);
      return b;
    }
    case 1: { // interesting bytes
      const n = 1 + r.int(4);
      for (let i = 0; i < n; i++) b[position(r, b.length)] = r.pick(INTERESTING_BYTES);
      return b;
    }
    case 2: { // an interesting little-endian 32-bit integer
      const at = Math.min(position(r, b.length), Math.max(0, b.length - 4));
      if (b.length >= 4) b.writeUInt32LE(r.pick(INTERESTING_U32), at);
      return b;
    }
    case 3: { // a huge 64-bit integer (sizes, offsets)
      if (b.length < 8) return b;
      const at = Math.min(position(r, b.length), b.length - 8);
      b.writeBigUInt64LE(r.pick([0n, 1n, 0xffffffffn, 0x100000000n, 0x7fffffffffffffffn, 0xffffffffffffffffn, BigInt(b.length) * 1000n]), at);
      return b;
    }
    case 4: // truncate
      return b.subarray(0, position(r, b.length));
    case 5: { // repeat a chunk (grows lists, repeats records)
      const at = position(r, b.length);
      const len = 1 + r.int(Math.min(64, b.length - at));
      const times = 1 + r.int(64);
      const chunk = b.subarray(at, at + len);
      return Buffer.concat([b.subarray(0, at), ...Array.from({ length: times }, () => chunk), b.subarray(at)]);
    }
    case 6: { // delete a chunk
      const at = position(r, b.length);
      const len = 1 + r.int(Math.min(256, b.length - at));
      return Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
    }
    default: { // random bytes inserted
      const at = position(r, b.length);
      const ins = Buffer.alloc(1 + r.int(16));
      for (let i = 0; i < ins.length; i++) ins[i] = r.int(256);
      return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
    }
  }
}

/** Replace one value somewhere in a JSON object tree with an absurd one. */
export function mutateJsonValue(obj, r) {
  const slots = [];
  const walk = (o, depth) => {
    if (depth > 4 || o === null || typeof o !== 'object') return;
    for (const k of Object.keys(o)) {
      slots.push([o, k]);
      walk(o[k], depth + 1);
    }
  };
  walk(obj, 0);
  if (slots.length === 0) return obj;
  const [o, k] = r.pick(slots);
  const v = o[k];
  if (Array.isArray(v) && v.length > 0 && r() < 0.5) v[r.int(v.length)] = r.pick(ABSURD_VALUES);
  else o[k] = structuredClone(r.pick(ABSURD_VALUES));
  return obj;
}

/**
 * A safetensors file with its JSON header rewritten: a tensor's shape, offsets or dtype, or
 * (most often) one hyperparameter inside the jukebox.* metadata strings.
 */
export function mutateSafetensors(input, r) {
  const len = Number(input.readBigUInt64LE(0));
  const header = JSON.parse(input.subarray(8, 8 + len).toString('utf8'));
  const meta = header.__metadata__ ?? {};
  const jsonKeys = Object.keys(meta).filter((k) => /^\s*[[{]/.test(meta[k]));
  const tensors = Object.keys(header).filter((k) => k !== '__metadata__');
  if (jsonKeys.length > 0 && r() < 0.7) {
    const key = r.pick(jsonKeys);
    meta[key] = JSON.stringify(mutateJsonValue(JSON.parse(meta[key]), r));
  } else if (tensors.length > 0) {
    const t = header[r.pick(tensors)];
    const what = r.int(3);
    if (what === 0) t.shape[r.int(Math.max(1, t.shape.length))] = r.pick([0, -1, 2 ** 31, 2 ** 53, 1e300, 0.5]);
    else if (what === 1) t.data_offsets[r.int(2)] = r.pick([0, -1, 2 ** 40, 2 ** 53, t.data_offsets[0] + 1]);
    else t.dtype = r.pick(['F64', 'I8', 'U8', 'BOOL', 'X', 'F16', 'BF16', 'I64']);
  }
  let text = JSON.stringify(header);
  if (r() < 0.1) text = text.slice(0, r.int(text.length)); // a header cut short
  const head = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(8 + head.length);
  out.writeBigUInt64LE(BigInt(r() < 0.05 ? head.length + 1 + r.int(100) : head.length), 0);
  head.copy(out, 8);
  return Buffer.concat([out, input.subarray(8 + len)]);
}

/** A WAV file's fmt fields set to extreme values (rate 1-2 Hz, 65535 channels, odd bit depths). */
export function mutateWavHeader(input, r) {
  const b = Buffer.from(input);
  const fmt = b.indexOf('fmt ');
  if (fmt < 0 || fmt + 24 > b.length) return mutateBytes(input, r);
  const field = r.int(5);
  if (field === 0) b.writeUInt32LE(r.pick([1, 2, 3, 100, 0, 0xffffffff, 768000, 4000000]), fmt + 12); // sample rate
  else if (field === 1) b.writeUInt16LE(r.pick([0, 3, 255, 65535]), fmt + 10); // channels
  else if (field === 2) b.writeUInt16LE(r.pick([0, 1, 7, 12, 48, 64, 65535]), fmt + 22); // bits per sample
  else if (field === 3) b.writeUInt16LE(r.pick([0, 1, 3, 65535]), fmt + 20); // block align
  else {
    const data = b.indexOf('data');
    if (data >= 0 && data + 8 <= b.length) b.writeUInt32LE(r.pick([0, 1, 0x7fffffff, 0xffffffff]), data + 4);
  }
  return b;
}
