/**
 * PyTorch checkpoints (`torch.save` output, legacy and zip formats) read without executing
 * anything from them.
 *
 * `readTorchCheckpoint` is synchronous: it parses only the pickle(s) and the zip directory with
 * positioned reads (an 11 GB legacy file costs its ~100 KB pickle plus one 8-byte read per
 * storage) and records where each storage's bytes sit in the file. Tensor bytes are read later,
 * on demand, with `readTensorData` (gathered, in memory) or `streamTensorData` (chunks, for
 * multi-GB copies).
 *
 * Globals are resolved through a small allow-list of pure data constructors (see
 * `makeOptions`). Any other global inside the state dict is refused with
 * ERR_CHECKPOINT_GLOBAL; elsewhere (hps, optimizer state, ...) it stays an inert placeholder and
 * is listed in `placeholders`.
 */
import * as fsp from 'node:fs/promises';
import { constants as bufferConstants } from 'node:buffer';
import { JukeboxError } from '../errors.js';
import { PickleCall, PickleGlobal, PyCallable, isPlaceholder, isTuple, unpickle, type UnpickleOptions } from './pickle.js';
import { DTYPE_SIZES, type DType } from './safetensors.js';
import { readZipDirectory, readZipEntry, withFileSource, type FileSource, type ZipEntry } from './zip.js';

export interface StorageRef {
  key: string;
  dtype: DType;
  /** Elements. */
  numel: number;
  /** Byte offset of the first data byte in the file. */
  fileOffset: number;
  nbytes: number;
  /** Device tag recorded by torch ('cpu', 'cuda:0'); informational only. */
  location: string;
}

export interface TensorRef {
  /** State-dict key with any 'module.' prefix removed. */
  name: string;
  dtype: DType;
  shape: number[];
  /** In elements, as torch reports them. */
  strides: number[];
  /** In elements from the start of the storage. */
  storageOffset: number;
  /** Shared by tied tensors (same object for the same key). */
  storage: StorageRef;
}

export interface TorchCheckpoint {
  path: string;
  format: 'legacy' | 'zip';
  /** String keys of the top-level dict (for a bare state dict: its keys). */
  topLevelKeys: string[];
  stateDict: Map<string, TensorRef>;
  /** JSON-able copy of the 'hps' entry: tuples -> arrays, None -> null, other values dropped. */
  hps?: Record<string, unknown>;
  step?: number;
  /** Qualified names of non-allowed globals found outside the state dict, first-seen order. */
  placeholders: string[];
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;
// The pickle of a checkpoint holds names, shapes and small values (the 5b_lyrics state dict's
// is well under 1 MB); a compressed data.pkl that inflates past this is a zip bomb.
const MAX_PICKLE_BYTES = 64 << 20;

// torch.<name> storage classes; normalize_storage_type maps CUDA ones to these before saving.
const STORAGE_DTYPES = new Map<string, DType>([
  ['FloatStorage', 'F32'],
  ['DoubleStorage', 'F64'],
  ['HalfStorage', 'F16'],
  ['BFloat16Storage', 'BF16'],
  ['LongStorage', 'I64'],
  ['IntStorage', 'I32'],
  ['ShortStorage', 'I16'],
  ['CharStorage', 'I8'],
  ['ByteStorage', 'U8'],
  ['BoolStorage', 'BOOL'],
]);

/** The storage-type global of a persistent id; dtype null = untyped bytes, undefined = unsupported. */
class StorageType {
  constructor(
    readonly qualifiedName: string,
    readonly dtype: DType | null | undefined,
  ) {}
}

/** A storage as the pickle declares it; its file position is filled in afterwards. */
class Storage {
  fileOffset = -1;
  constructor(
    readonly key: string,
    readonly type: StorageType,
    readonly location: string,
    readonly numel: number,
  ) {}
  get elementSize(): number {
    return this.type.dtype ? DTYPE_SIZES[this.type.dtype] : 1;
  }
}

/** A tensor as `_rebuild_tensor*` describes it; `extra` keeps the other arguments for the global check. */
class RawTensor {
  constructor(
    readonly storage: Storage,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly strides: number[],
    readonly extra: readonly unknown[],
  ) {}
}

/** A decoded container: the main pickle's value, and how to find each storage's bytes. */
interface Decoded {
  root: unknown;
  /** BUILD states of allowed objects (e.g. a state dict's `_metadata`), kept for the global check. */
  builds: WeakMap<object, unknown[]>;
  /** Set every storage's fileOffset; `user` names a storage in errors (e.g. the tensor using it). */
  locate(user: (s: Storage) => string): void;
}

// ---------------------------------------------------------------------------------------------
// Allow-list: every entry is a pure function of its pickled arguments.

function makeOptions(path: string, storages: Map<string, Storage>, builds: WeakMap<object, unknown[]>): UnpickleOptions {
  const format = (what: string): never => {
    throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: ${what}`);
  };
  const index = (v: unknown, what: string): number =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : format(`${what} must be a non-negative integer, got ${String(v)}`);
  const dims = (v: unknown, what: string): number[] =>
    Array.isArray(v) ? v.map((d) => index(d, what)) : format(`${what} must be a tuple`);

  const rebuildTensor = (args: readonly unknown[], minArgs: number): unknown => {
    if (args.length < minArgs) format(`tensor rebuild call has ${args.length} arguments, expected at least ${minArgs}`);
    const [storage, offset, size, stride, ...extra] = args;
    if (isPlaceholder(storage)) return new PickleCall(storage, args); // inert; reported by the global check
    if (!(storage instanceof Storage)) return format('tensor rebuild call without a storage');
    if (storage.type.dtype === null) {
      throw new JukeboxError('ERR_DTYPE', `${path}: a tensor uses untyped storage ${storage.key} (${storage.type.qualifiedName}); its dtype cannot be inferred`);
    }
    const shape = dims(size, 'tensor size');
    const strides = dims(stride, 'tensor stride');
    if (shape.length !== strides.length) format(`tensor size ${JSON.stringify(shape)} and stride ${JSON.stringify(strides)} differ in rank`);
    return new RawTensor(storage, index(offset, 'storage offset'), shape, strides, extra);
  };

  const allowed = new Map<string, unknown>([
    // dict with ordered keys: the state dict's own type
    ['collections.OrderedDict', new PyCallable('collections.OrderedDict', (args) => {
      const m = new Map<unknown, unknown>();
      for (const pair of Array.isArray(args[0]) ? args[0] : []) {
        if (!Array.isArray(pair) || pair.length !== 2) format('OrderedDict argument is not a list of pairs');
        m.set(pair[0], pair[1]);
      }
      return m;
    })],
    // how every tensor is pickled (v2 since torch 0.4; plain _rebuild_tensor before)
    ['torch._utils._rebuild_tensor_v2', new PyCallable('torch._utils._rebuild_tensor_v2', (a) => rebuildTensor(a, 6))],
    ['torch._utils._rebuild_tensor', new PyCallable('torch._utils._rebuild_tensor', (a) => rebuildTensor(a, 4))],
    // nn.Parameter saved as such (keep_vars=True): the parameter is its tensor
    ['torch._utils._rebuild_parameter', new PyCallable('torch._utils._rebuild_parameter', (args) => {
      const [data, ...extra] = args;
      if (isPlaceholder(data)) return new PickleCall(data, args);
      if (!(data instanceof RawTensor)) return format('parameter rebuild call without a tensor');
      return new RawTensor(data.storage, data.storageOffset, data.shape, data.strides, [...data.extra, ...extra]);
    })],
    // a tuple subclass
    ['torch.Size', new PyCallable('torch.Size', (args) => Object.freeze(Array.isArray(args[0]) ? [...args[0]] : []))],
    // protocol 2 spells bytes as _codecs.encode(str, 'latin1')
    ['_codecs.encode', new PyCallable('_codecs.encode', ([s, enc]) => {
      if (typeof s !== 'string') return format('_codecs.encode of a non-string');
      if (enc === 'latin1' || enc === 'latin-1') return new Uint8Array(Buffer.from(s, 'latin1'));
      if (enc === 'utf-8' || enc === 'utf8') return new Uint8Array(Buffer.from(s, 'utf8'));
      return format(`_codecs.encode with encoding ${String(enc)}`);
    })],
    // protocols 0-3 spell set / frozenset as a call (hyperparameter dicts may hold them)
    ...['builtins', '__builtin__'].flatMap((m) =>
      ['set', 'frozenset'].map((n): [string, PyCallable] => [`${m}.${n}`, new PyCallable(`${m}.${n}`, (args) => new Set(Array.isArray(args[0]) ? args[0] : []))]),
    ),
    ['torch.UntypedStorage', new StorageType('torch.UntypedStorage', null)],
    ['torch.storage.UntypedStorage', new StorageType('torch.storage.UntypedStorage', null)],
  ]);

  return {
    label: path,
    resolveGlobal(module, name) {
      const q = `${module}.${name}`;
      const hit = allowed.get(q);
      if (hit !== undefined) return hit;
      // torch.<X>Storage names a storage type (inert data). One outside STORAGE_DTYPES (complex,
      // quantized) is a dtype we cannot load: ERR_DTYPE when used, not a foreign global.
      if (module === 'torch' && /^\w+Storage$/.test(name)) return new StorageType(q, STORAGE_DTYPES.get(name));
      return undefined;
    },
    persistentLoad(pid) {
      if (!isTuple(pid) || pid[0] !== 'storage' || (pid.length !== 5 && pid.length !== 6)) {
        return format('persistent id is not a (\'storage\', type, key, location, numel) tuple');
      }
      const [, type, key, location, numel, view] = pid;
      if (isPlaceholder(type)) return new PickleCall(type, pid); // inert; reported by the global check
      if (!(type instanceof StorageType)) return format('persistent id without a storage type');
      if (type.dtype === undefined) throw new JukeboxError('ERR_DTYPE', `${path}: storage type ${type.qualifiedName} is not supported`);
      if (typeof key !== 'string' || typeof location !== 'string') return format('persistent id with a non-string key or location');
      if (view !== undefined && view !== null) format(`storage ${key} is a legacy storage view, which is not supported`);
      const n = index(numel, `numel of storage ${key}`);
      const seen = storages.get(key);
      if (seen) {
        if (seen.type.dtype !== type.dtype || seen.numel !== n) format(`storage ${key} is declared twice with different types or sizes`);
        return seen;
      }
      const s = new Storage(key, type, location, n);
      storages.set(key, s);
      return s;
    },
    onBuild(target, state) {
      if (typeof target !== 'object' || target === null) return format('BUILD on a non-object');
      const list = builds.get(target) ?? [];
      list.push(state);
      builds.set(target, list);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Container formats

function decodeLegacy(src: FileSource): Decoded {
  const path = src.label;
  const plain: UnpickleOptions = { label: path };
  const storages = new Map<string, Storage>();
  const builds = new WeakMap<object, unknown[]>();
  const magic = unpickle(src, 0, plain);
  if (magic.value !== LEGACY_MAGIC) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: not a PyTorch checkpoint (bad legacy magic number)`);
  const version = unpickle(src, magic.end, plain);
  if (version.value !== LEGACY_PROTOCOL_VERSION) {
    throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: unsupported legacy protocol version ${String(version.value)}`);
  }
  const sysInfo = unpickle(src, version.end, plain);
  if (!(sysInfo.value instanceof Map) || sysInfo.value.get('little_endian') !== true) {
    throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: big-endian (or unlabelled) legacy checkpoints are not supported`);
  }
  const main = unpickle(src, sysInfo.end, makeOptions(path, storages, builds));
  const keys = unpickle(src, main.end, plain);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
    throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: legacy storage key list is not a list of strings`);
  }
  const order = keys.value as string[];

  // After the key list, each storage in that order: int64 numel, then its raw bytes.
  const locate = (user: (s: Storage) => string): void => {
    let pos = keys.end;
    for (const key of order) {
      const s = storages.get(key);
      if (!s) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: storage ${key} has data but no tensor refers to it`);
      if (s.fileOffset >= 0) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: storage ${key} is listed twice`);
      if (pos + 8 > src.size) throw truncated(path, `${user(s)}: the file ends before its size header`);
      const numel = src.read(pos, 8).readBigInt64LE(0);
      if (numel !== BigInt(s.numel)) {
        throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: ${user(s)}: data header says ${numel} elements, the pickle says ${s.numel}`);
      }
      const nbytes = s.numel * s.elementSize;
      if (pos + 8 + nbytes > src.size) throw truncated(path, `${user(s)}: the file ends ${pos + 8 + nbytes - src.size} bytes before its data does`);
      s.fileOffset = pos + 8;
      pos += 8 + nbytes;
    }
    for (const s of storages.values()) {
      if (s.fileOffset < 0) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: ${user(s)} has no data in the file`);
    }
  };
  return { root: main.value, builds, locate };
}

function decodeZip(src: FileSource): Decoded {
  const path = src.label;
  const entries = readZipDirectory(src);
  // The archive's single top-level folder (any name) holds data.pkl, data/<key>, version, ...
  const pickles = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickles.length !== 1) {
    throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: not a PyTorch checkpoint (zip archive with ${pickles.length} top-level data.pkl entries)`);
  }
  const prefix = pickles[0]!.slice(0, -'data.pkl'.length);
  const byteorder = entries.get(`${prefix}byteorder`);
  if (byteorder) {
    const order = readZipEntry(src, byteorder, 64).toString('latin1').trim();
    if (order !== 'little') throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: ${order}-endian checkpoints are not supported`);
  }
  const storages = new Map<string, Storage>();
  const builds = new WeakMap<object, unknown[]>();
  const pkl = readZipEntry(src, entries.get(pickles[0]!)!, MAX_PICKLE_BYTES);
  // Offsets in pickle errors are relative to data.pkl, so name it.
  const main = unpickle(pkl, 0, { ...makeOptions(path, storages, builds), label: `${path}: ${pickles[0]}` });

  const locate = (user: (s: Storage) => string): void => {
    for (const s of storages.values()) {
      const e: ZipEntry | undefined = entries.get(`${prefix}data/${s.key}`);
      if (!e) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: ${user(s)}: no ${prefix}data/${s.key} entry in the archive`);
      if (e.method !== 0) {
        throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: ${user(s)} is compressed (zip method ${e.method}); only uncompressed storages can be read in place`);
      }
      const nbytes = s.numel * s.elementSize;
      if (e.uncompressedSize !== nbytes) {
        throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: ${user(s)}: entry holds ${e.uncompressedSize} bytes, expected ${nbytes}`);
      }
      s.fileOffset = e.dataOffset;
    }
  };
  return { root: main.value, builds, locate };
}

function truncated(path: string, what: string): JukeboxError {
  return new JukeboxError('ERR_CHECKPOINT_TRUNCATED', `${path}: truncated: ${what}`);
}

// ---------------------------------------------------------------------------------------------
// Walking the decoded value

/** Children of a decoded value, for walks; BUILD states count as children. */
function children(v: unknown, builds: WeakMap<object, unknown[]>): unknown[] {
  // Array literals, not push(...x): a spread call argument list overflows past ~100k items.
  let out: unknown[] = [];
  if (v instanceof Map) out = [...v].flat();
  else if (Array.isArray(v) || v instanceof Set) out = [...v];
  else if (v instanceof RawTensor) out = [...v.extra];
  else if (v instanceof PickleCall) out = [v.callee, ...v.args, v.state, ...v.dictItems.flat(), ...v.listItems, v.kwargs];
  const built = typeof v === 'object' && v !== null ? builds.get(v) : undefined;
  return built ? out.concat(built) : out;
}

/**
 * Every non-allowed global reachable from `roots`, not descending into anything in `seen` (which
 * it extends). Iterative: pickles can nest deep or loop.
 */
function placeholdersIn(roots: unknown[], builds: WeakMap<object, unknown[]>, seen: Set<unknown>): PickleGlobal[] {
  const found: PickleGlobal[] = [];
  const todo = [...roots].reverse();
  while (todo.length > 0) {
    const v = todo.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof PickleGlobal) found.push(v);
    const c = children(v, builds);
    for (let i = c.length - 1; i >= 0; i--) todo.push(c[i]); // reversed, so the walk is in pickle order
  }
  return found;
}

function globalError(path: string, g: PickleGlobal, at: string): JukeboxError {
  return new JukeboxError('ERR_CHECKPOINT_GLOBAL', `${path}: refusing global ${g.qualifiedName} ${at}; nothing from the file was run`);
}

function rootGlobal(p: PickleGlobal | PickleCall): PickleGlobal {
  return p instanceof PickleGlobal ? p : p.global;
}

function pyRepr(k: unknown): string {
  return typeof k === 'string' ? `'${k}'` : String(k);
}

/**
 * The state dict's tensors, refusing any non-allowed global anywhere inside it (product rule:
 * the weights must be plain data). `where` names the state dict in messages.
 */
function collectTensors(path: string, sd: unknown, where: string, builds: WeakMap<object, unknown[]>): Map<string, RawTensor> {
  const refuse = (g: PickleGlobal, at: string): never => {
    throw globalError(path, g, at);
  };
  if (isPlaceholder(sd)) refuse(rootGlobal(sd), `as ${where}`);
  if (!(sd instanceof Map)) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: ${where} is not a dict`);
  // One `seen` set for all walks: whatever an earlier walk visited is already known clean, so a
  // structure shared by many entries is walked once.
  const seen = new Set<unknown>();
  const own = placeholdersIn(builds.get(sd) ?? [], builds, seen);
  if (own.length > 0) refuse(own[0]!, `in the metadata of ${where}`);
  const tensors = new Map<string, RawTensor>();
  for (const [key, value] of sd) {
    const bad = placeholdersIn([key, value], builds, seen);
    if (bad.length > 0) refuse(bad[0]!, `in ${where} at key ${pyRepr(key)}`);
    if (typeof key !== 'string') throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: ${where} has a non-string key ${pyRepr(key)}`);
    if (!(value instanceof RawTensor)) continue; // plain non-tensor extras carry no weights
    const name = key.startsWith('module.') ? key.slice('module.'.length) : key;
    if (tensors.has(name)) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: ${where} has ${name} both with and without the 'module.' prefix`);
    tensors.set(name, value);
  }
  return tensors;
}

const HPS_MAX_DEPTH = 64;
const HPS_MAX_NODES = 1_000_000;
const HPS_MAX_TOTAL_NODES = 4_000_000;
const TOO_BIG = Symbol('too big');

/**
 * The 'hps' entry (a dict, or a placeholder dict subclass such as jukebox's Hyperparams) as a
 * JSON-able object. A key whose value is too deep or too large (memo sharing can make a small
 * pickle expand exponentially) is dropped, like any other value that is not plain data.
 */
function plainHps(v: unknown): Record<string, unknown> | undefined {
  const items = v instanceof Map ? [...v] : v instanceof PickleCall ? dictLike(v) : undefined;
  if (!items) return undefined;
  // A budget per key (a key too large to expand is dropped, the others kept), and one for the
  // whole entry: memo sharing lets every key point at the same huge value.
  let total = HPS_MAX_TOTAL_NODES;
  return plainObject(items, (x) => {
    const budget = { nodes: Math.min(HPS_MAX_NODES, total) };
    try {
      return toPlain(x, 1, budget);
    } catch (e) {
      if (e === TOO_BIG) return undefined;
      throw e;
    } finally {
      total -= Math.min(HPS_MAX_NODES, total) - Math.max(0, budget.nodes);
    }
  });
}

/** tuples/lists/sets -> arrays, None -> null, dicts -> objects, big ints -> digit strings; else undefined. */
function toPlain(v: unknown, depth: number, budget: { nodes: number }): unknown {
  if (--budget.nodes < 0 || depth > HPS_MAX_DEPTH) throw TOO_BIG;
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v) || v instanceof Set) return [...v].map((x) => toPlain(x, depth + 1, budget) ?? null);
  const items = v instanceof Map ? [...v] : v instanceof PickleCall ? dictLike(v) : undefined;
  return items && plainObject(items, (x) => toPlain(x, depth + 1, budget));
}

/** Only str and int keys survive (as strings); entries whose value converts to undefined are dropped. */
function plainObject(items: [unknown, unknown][], convert: (v: unknown) => unknown): Record<string, unknown> {
  const entries: [string, unknown][] = [];
  for (const [k, x] of items) {
    if (typeof k !== 'string' && typeof k !== 'number') continue;
    const p = convert(x);
    if (p !== undefined) entries.push([String(k), p]);
  }
  return Object.fromEntries(entries); // defines own properties, so a '__proto__' key stays data
}

/** A placeholder dict subclass (e.g. jukebox's Hyperparams): its items, then its __dict__ state. */
function dictLike(c: PickleCall): [unknown, unknown][] | undefined {
  const state = c.state instanceof Map ? [...c.state] : [];
  if (c.dictItems.length === 0 && state.length === 0) return undefined;
  const keys = new Set(c.dictItems.map(([k]) => k));
  return [...c.dictItems, ...state.filter(([k]) => !keys.has(k))];
}

// ---------------------------------------------------------------------------------------------
// Public API

/** Read a checkpoint's structure (synchronously; see the module comment). */
export function readTorchCheckpoint(path: string): TorchCheckpoint {
  return withFileSource(path, (src) => {
    const format = sniff(src);
    const { root, builds, locate } = format === 'zip' ? decodeZip(src) : decodeLegacy(src);

    if (isPlaceholder(root)) throw globalError(path, rootGlobal(root), 'as the checkpoint root');
    if (!(root instanceof Map)) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: the checkpoint root is not a dict`);
    const container = root.has('model');
    const sd = container ? root.get('model') : root;
    const raw = collectTensors(path, sd, container ? "the 'model' entry" : 'the state dict', builds);
    if (!container && raw.size === 0) {
      throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: neither a 'model' entry nor tensors at the top level (keys: ${[...root.keys()].map(pyRepr).join(', ')})`);
    }

    const users = new Map<Storage, string>();
    for (const [name, t] of raw) if (!users.has(t.storage)) users.set(t.storage, name);
    locate((s) => `storage ${s.key}` + (users.has(s) ? ` (tensor ${users.get(s)})` : ' (not used by the state dict)'));
    const stateDict = tensorRefs(path, raw);

    const outside = container ? [...root].filter(([k]) => k !== 'model').flat() : [];
    const placeholders = [...new Set(placeholdersIn(outside, builds, new Set([sd])).map((g) => g.qualifiedName))];
    const hps = container ? plainHps(root.get('hps')) : undefined;
    const step = container ? root.get('step') : undefined;
    return {
      path,
      format,
      topLevelKeys: [...root.keys()].filter((k): k is string => typeof k === 'string'),
      stateDict,
      ...(hps !== undefined && { hps }),
      ...(typeof step === 'number' && { step }),
      placeholders,
    };
  });
}

/** Public tensor records, once storages are located; tied tensors share one StorageRef object. */
function tensorRefs(path: string, raw: Map<string, RawTensor>): Map<string, TensorRef> {
  const refs = new Map<Storage, StorageRef>();
  const out = new Map<string, TensorRef>();
  for (const [name, t] of raw) {
    const s = t.storage;
    let storage = refs.get(s);
    if (!storage) {
      storage = { key: s.key, dtype: s.type.dtype!, numel: s.numel, fileOffset: s.fileOffset, nbytes: s.numel * s.elementSize, location: s.location };
      refs.set(s, storage);
    }
    const ref: TensorRef = { name, dtype: storage.dtype, shape: t.shape, strides: t.strides, storageOffset: t.storageOffset, storage };
    checkExtent(path, ref);
    out.set(name, ref);
  }
  return out;
}

function sniff(src: FileSource): 'legacy' | 'zip' {
  if (src.size === 0) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${src.label}: not a PyTorch checkpoint (empty file)`);
  const head = src.read(0, Math.min(src.size, 14));
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
  // PROTO n, LONG1 of 10 bytes holding the magic number
  const magic = Buffer.from('6cfc9c46f9206aa85019', 'hex');
  if (head.length === 14 && head[0] === 0x80 && head[2] === 0x8a && head[3] === 0x0a && head.subarray(4).equals(magic)) return 'legacy';
  throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${src.label}: not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save file)`);
}

export function tensorNumel(t: Pick<TensorRef, 'shape'>): number {
  return t.shape.reduce((n, d) => n * d, 1);
}

export function tensorNbytes(t: Pick<TensorRef, 'shape' | 'dtype'>): number {
  return tensorNumel(t) * DTYPE_SIZES[t.dtype];
}

/** C-contiguous: the bytes are one run in the file (size-1 dimensions may have any stride). */
export function isContiguous(t: Pick<TensorRef, 'shape' | 'strides'>): boolean {
  let expected = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    const d = t.shape[i]!;
    if (d === 0) return true;
    if (d !== 1 && t.strides[i] !== expected) return false;
    expected *= d;
  }
  return true;
}

/** Elements of the storage the view touches, from its offset: 1 + the largest index reached. */
function extent(t: Pick<TensorRef, 'shape' | 'strides'>): number {
  if (tensorNumel(t) === 0) return 0;
  return 1 + t.shape.reduce((n, d, i) => n + (d - 1) * t.strides[i]!, 0);
}

function checkExtent(path: string, t: TensorRef): void {
  if (!Number.isSafeInteger(tensorNbytes(t))) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: tensor ${t.name} has an absurd size ${JSON.stringify(t.shape)}`);
  const need = extent(t) === 0 ? 0 : t.storageOffset + extent(t);
  if (!Number.isSafeInteger(need) || need > t.storage.numel) {
    throw new JukeboxError(
      'ERR_CHECKPOINT_FORMAT',
      `${path}: tensor ${t.name}: storage shorter than its tensor (storage ${t.storage.key} has ${t.storage.numel} elements, ` +
        `shape ${JSON.stringify(t.shape)} with strides ${JSON.stringify(t.strides)} at offset ${t.storageOffset} needs ${need})`,
    );
  }
  // A view with more elements than its storage holds (stride 0, or overlapping strides) would
  // be expanded on read: a 1.4 MB file could make convert write gigabytes. Weights never are
  // such views, so refuse them; every output is then bounded by the bytes the file holds.
  if (tensorNumel(t) > t.storage.numel) {
    throw new JukeboxError(
      'ERR_CHECKPOINT_FORMAT',
      `${path}: tensor ${t.name} is a view of ${tensorNumel(t)} elements over storage ${t.storage.key} of only ${t.storage.numel} ` +
        `(shape ${JSON.stringify(t.shape)}, strides ${JSON.stringify(t.strides)}): repeated (stride-0 or overlapping) views are not weights and are refused`,
    );
  }
}

/** Copy a strided view out of `span` (the storage bytes from the view's offset) into C order. */
function gather(span: Buffer, t: TensorRef): Buffer {
  const el = DTYPE_SIZES[t.dtype];
  const out = Buffer.allocUnsafe(tensorNbytes(t));
  const dims = t.shape.map((size, i) => ({ size, stride: t.strides[i]! })).filter((d) => d.size !== 1);
  // Fold trailing dimensions that are contiguous into one run copied at once.
  let run = 1;
  while (dims.length > 0 && dims[dims.length - 1]!.stride === run) run *= dims.pop()!.size;
  const runBytes = run * el;
  const idx = new Array<number>(dims.length).fill(0);
  let from = 0; // elements into span
  for (let o = 0; o < out.length; o += runBytes) {
    span.copy(out, o, from * el, from * el + runBytes);
    for (let d = dims.length - 1; d >= 0; d--) {
      from += dims[d]!.stride;
      if (++idx[d]! < dims[d]!.size) break;
      from -= dims[d]!.stride * dims[d]!.size;
      idx[d] = 0;
    }
  }
  return out;
}

/** A tensor's values as contiguous little-endian bytes (C order), gathering strided views. */
export function readTensorData(path: string, t: TensorRef): Buffer {
  const el = DTYPE_SIZES[t.dtype];
  const spanBytes = extent(t) * el;
  if (spanBytes > bufferConstants.MAX_LENGTH) {
    throw new JukeboxError('ERR_OUT_OF_MEMORY', `${path}: tensor ${t.name} spans ${spanBytes} bytes, too many for one buffer; use streamTensorData`);
  }
  if (spanBytes === 0) return Buffer.alloc(0);
  const span = withFileSource(path, (src) => {
    try {
      return src.read(t.storage.fileOffset + t.storageOffset * el, spanBytes);
    } catch (e) {
      throw e instanceof JukeboxError ? new JukeboxError(e.code, `${e.message} (reading tensor ${t.name})`, { cause: e }) : e;
    }
  });
  return isContiguous(t) ? span : gather(span, t);
}

/**
 * A tensor's bytes in chunks of at most `chunkBytes`, for copies of multi-GB tensors. A
 * non-contiguous view comes as one gathered chunk (it must fit in memory).
 */
export async function* streamTensorData(path: string, t: TensorRef, chunkBytes = 64 * 1024 * 1024): AsyncGenerator<Buffer> {
  if (!(chunkBytes >= 1)) throw new JukeboxError('ERR_INVALID_ARGUMENT', `streamTensorData: chunkBytes must be at least 1, got ${chunkBytes}`);
  if (!isContiguous(t)) {
    yield readTensorData(path, t);
    return;
  }
  const total = tensorNbytes(t);
  const start = t.storage.fileOffset + t.storageOffset * DTYPE_SIZES[t.dtype];
  const fh = await fsp.open(path, 'r').catch((cause: Error) => {
    throw new JukeboxError('ERR_IO', `${path}: cannot open: ${cause.message}`, { cause });
  });
  try {
    for (let done = 0; done < total; ) {
      const buf = Buffer.allocUnsafe(Math.min(chunkBytes, total - done));
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await fh.read(buf, filled, buf.length - filled, start + done + filled);
        if (bytesRead === 0) throw truncated(path, `the file ends inside tensor ${t.name}`);
        filled += bytesRead;
      }
      done += buf.length;
      yield buf;
    }
  } finally {
    await fh.close();
  }
}
