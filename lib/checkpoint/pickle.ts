/**
 * A safe unpickler: a Python pickle virtual machine (protocols 0-5) that builds plain data and
 * never imports or calls anything. The caller decides what each global means through
 * `resolveGlobal` (an allow-list of pure data constructors); any other global becomes an inert
 * `PickleGlobal`, and calling or instantiating one yields an inert `PickleCall` that only
 * records what was asked, so the caller can inspect and reject it afterwards.
 *
 * Python values are represented as:
 * - None -> null; bool -> boolean; float -> number
 * - int -> number when it is a safe integer, bigint otherwise
 * - str -> string; bytes / bytearray -> Uint8Array (a copy, never a view of the input)
 * - list -> mutable Array; tuple -> frozen Array (`isTuple`)
 * - dict -> Map. Keys keep their Python value representation, so str/int/float/None/bool keys
 *   compare by value while tuple keys compare by identity (enough to iterate; a pickle never
 *   needs to look a key up).
 * - set / frozenset (protocol 4+ opcodes) -> Set
 * - allowed globals -> whatever `resolveGlobal` returns; `PyCallable`s among them are invoked by
 *   REDUCE / NEWOBJ / INST / OBJ with the pickled arguments.
 *
 * Errors: malformed input throws JukeboxError ERR_CHECKPOINT_FORMAT, or ERR_CHECKPOINT_TRUNCATED
 * when the input ends before a declared length; both name `label` and the byte offset. The
 * machine moves forward on every opcode, so it always terminates.
 */
import { JukeboxError, type JukeboxErrorCode } from '../errors.js';

/** A non-allowed global, kept as a name only. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * The record of calling or instantiating a placeholder: its arguments, and what later opcodes
 * did to the result (BUILD state, SETITEMS / APPENDS / ADDITEMS items), so that e.g. a dict
 * subclass such as jukebox's Hyperparams still yields its items.
 */
export class PickleCall {
  state: unknown = undefined;
  readonly dictItems: [unknown, unknown][] = [];
  readonly listItems: unknown[] = [];
  constructor(
    readonly callee: PickleGlobal | PickleCall,
    readonly args: readonly unknown[],
    readonly kwargs?: Map<unknown, unknown>,
  ) {}
  /** The global at the root of this call chain (for error messages). */
  get global(): PickleGlobal {
    let c: PickleGlobal | PickleCall = this.callee;
    while (c instanceof PickleCall) c = c.callee;
    return c;
  }
}

/** An allowed global that REDUCE / NEWOBJ may call: a pure function of the pickled arguments. */
export class PyCallable {
  constructor(
    readonly qualifiedName: string,
    readonly fn: (args: readonly unknown[]) => unknown,
  ) {}
}

/** Random-access input (a file or a buffer); `read` returns exactly `length` bytes. */
export interface ByteSource {
  readonly size: number;
  read(position: number, length: number): Uint8Array;
}

export interface UnpickleOptions {
  /** Used in error messages, e.g. the file path. */
  label: string;
  /** Allowed globals: return the value to push, or undefined to push an inert PickleGlobal. */
  resolveGlobal?: (module: string, name: string) => unknown;
  /** Meaning of persistent ids (PERSID / BINPERSID); without it they are a format error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** BUILD on anything but a PickleCall; without it that is a format error. */
  onBuild?: (target: unknown, state: unknown) => void;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just past the STOP opcode (the next pickle in a stream starts there). */
  end: number;
}

export function isTuple(v: unknown): v is readonly unknown[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

export function isPlaceholder(v: unknown): v is PickleGlobal | PickleCall {
  return v instanceof PickleGlobal || v instanceof PickleCall;
}

// No single pickled string/bytes/line may exceed this: V8 strings top out near 512 MiB and a
// legitimate checkpoint pickle holds names and small values, never bulk data.
const MAX_ITEM_BYTES = 256 * 1024 * 1024;
const WINDOW_BYTES = 1 << 20;
/**
 * Work and memory a pickle may ask for. A checkpoint's pickle runs tens of thousands of
 * opcodes and builds as many objects (the 5b_lyrics state dict: ~1200 tensors); a hostile one
 * (16-256 MB of one opcode such as `}`, `]`, `(` or `N`) would otherwise build hundreds of
 * millions of objects, or nest MARKs that deep, until the process runs out of memory.
 */
export const PICKLE_LIMITS = {
  opcodes: 1 << 26,
  /** Containers created plus items put into containers, over the whole pickle. */
  objects: 1 << 23,
  stack: 1 << 20,
  marks: 1 << 16,
  memo: 1 << 20,
};
const HIGHEST_PROTOCOL = 5;
const utf8 = new TextDecoder('utf-8');

/** Buffered forward reader over a ByteSource (or a whole in-memory array). */
class Reader {
  private win: Uint8Array;
  private dv: DataView;
  private winStart: number;

  constructor(
    private readonly src: ByteSource | Uint8Array,
    public pos: number,
    private readonly label: string,
  ) {
    if (src instanceof Uint8Array) {
      this.win = src;
      this.winStart = 0;
    } else {
      this.win = new Uint8Array(0);
      this.winStart = pos;
    }
    this.dv = new DataView(this.win.buffer, this.win.byteOffset, this.win.byteLength);
  }

  get size(): number {
    return this.src instanceof Uint8Array ? this.src.length : this.src.size;
  }

  fail(code: JukeboxErrorCode, what: string, at = this.pos): never {
    throw new JukeboxError(code, `${this.label}: ${what} at byte ${at}`);
  }

  /** Make [pos, pos + n) available in the window; returns its index in the window. */
  private ensure(n: number, what: string): number {
    if (n > this.size - this.pos) {
      this.fail('ERR_CHECKPOINT_TRUNCATED', `pickle ends inside ${what} (needs ${n} bytes, ${Math.max(0, this.size - this.pos)} left)`);
    }
    const i = this.pos - this.winStart;
    if (i >= 0 && i + n <= this.win.length) return i;
    const src = this.src as ByteSource; // a Uint8Array source is always fully in the window
    const len = Math.min(Math.max(n, WINDOW_BYTES), this.size - this.pos);
    this.win = src.read(this.pos, len);
    this.dv = new DataView(this.win.buffer, this.win.byteOffset, this.win.byteLength);
    this.winStart = this.pos;
    return 0;
  }

  u8(what: string): number {
    const i = this.ensure(1, what);
    this.pos += 1;
    return this.win[i]!;
  }
  u16(what: string): number {
    const i = this.ensure(2, what);
    this.pos += 2;
    return this.dv.getUint16(i, true);
  }
  i32(what: string): number {
    const i = this.ensure(4, what);
    this.pos += 4;
    return this.dv.getInt32(i, true);
  }
  u32(what: string): number {
    const i = this.ensure(4, what);
    this.pos += 4;
    return this.dv.getUint32(i, true);
  }
  u64(what: string): number {
    const i = this.ensure(8, what);
    const v = this.dv.getBigUint64(i, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail('ERR_CHECKPOINT_TRUNCATED', `absurd ${what} ${v}`);
    this.pos += 8;
    return Number(v);
  }
  f64be(what: string): number {
    const i = this.ensure(8, what);
    this.pos += 8;
    return this.dv.getFloat64(i, false);
  }

  /** A copy of the next n bytes (n is a length field read from the input). */
  bytes(n: number, what: string): Uint8Array {
    if (n < 0) this.fail('ERR_CHECKPOINT_FORMAT', `negative length ${n} for ${what}`);
    if (n > MAX_ITEM_BYTES && n <= this.size - this.pos) this.fail('ERR_CHECKPOINT_FORMAT', `${what} of ${n} bytes is too large`);
    const i = this.ensure(n, what);
    this.pos += n;
    return this.win.slice(i, i + n);
  }

  /** Bytes up to (not including) the next newline, which is consumed. */
  line(what: string): Uint8Array {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const i = this.ensure(1, what);
      const nl = this.win.indexOf(0x0a, i);
      const stop = nl < 0 ? this.win.length : nl;
      parts.push(this.win.subarray(i, stop));
      total += stop - i;
      this.pos += stop - i;
      if (total > MAX_ITEM_BYTES) this.fail('ERR_CHECKPOINT_FORMAT', `${what} line is too long`);
      if (nl >= 0) {
        this.pos += 1;
        return concat(parts, total);
      }
    }
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!.slice();
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** int -> number when safe, else bigint (Python ints are unbounded). */
function normInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** LONG1 / LONG4 payload: little-endian two's complement. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return normInt(v);
}

const SIMPLE_ESCAPES = new Map<string, number>([
  ['n', 10], ['t', 9], ['r', 13], ['\\', 92], ["'", 39], ['"', 34], ['a', 7], ['b', 8], ['f', 12], ['v', 11],
]);

/** Python's string-literal escapes (protocol 0 STRING), as bytes. */
function unescapePyBytes(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (s[i] !== '\\' || i + 1 >= s.length) {
      out.push(c & 0xff);
      continue;
    }
    const e = s[++i]!;
    if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[0-7]/.test(e)) {
      const m = /^[0-7]{1,3}/.exec(s.slice(i))![0];
      out.push(parseInt(m, 8) & 0xff);
      i += m.length - 1;
    } else if (e === '\n') {
      // line continuation
    } else if (SIMPLE_ESCAPES.has(e)) {
      out.push(SIMPLE_ESCAPES.get(e)!);
    } else {
      out.push(92, e.charCodeAt(0) & 0xff);
    }
  }
  return Uint8Array.from(out);
}

/** Python's raw-unicode-escape codec (protocol 0 UNICODE): latin-1 plus \uXXXX / \UXXXXXXXX. */
function rawUnicodeEscape(b: Uint8Array): string {
  return latin1(b).replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (m, u: string | undefined, U: string | undefined) => {
    const cp = parseInt((u ?? U)!, 16);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
  });
}

function parseIntText(text: string, r: Reader, what: string): number | bigint {
  const t = text.trim().replace(/L$/, '');
  if (!/^[+-]?\d+$/.test(t)) r.fail('ERR_CHECKPOINT_FORMAT', `bad ${what} literal ${JSON.stringify(text.slice(0, 40))}`);
  return normInt(BigInt(t));
}

// Python's repr of non-finite floats (Number() only knows 'Infinity').
const FLOAT_WORDS = new Map([['inf', Infinity], ['+inf', Infinity], ['-inf', -Infinity], ['nan', NaN], ['-nan', NaN]]);

function parseFloatText(text: string, r: Reader): number {
  const t = text.trim().toLowerCase();
  const special = FLOAT_WORDS.get(t);
  if (special !== undefined) return special;
  const v = Number(t);
  if (t === '' || Number.isNaN(v)) r.fail('ERR_CHECKPOINT_FORMAT', `bad FLOAT literal ${JSON.stringify(text.slice(0, 40))}`);
  return v;
}

/** Unpickle one pickle starting at `start`. */
export function unpickle(src: ByteSource | Uint8Array, start: number, opts: UnpickleOptions): UnpickleResult {
  const r = new Reader(src, start, opts.label);
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  let opPos = start;

  const fail = (what: string): never => r.fail('ERR_CHECKPOINT_FORMAT', what, opPos);
  let opcodes = 0;
  let objects = 0;
  const limit = (what: string, max: number): never =>
    fail(`the pickle asks for more than ${max} ${what}, far beyond any checkpoint (a decompression bomb or a corrupt file?)`);
  /** Count n new objects or container items against the budget. */
  const grow = (n: number): void => {
    objects += n;
    if (objects > PICKLE_LIMITS.objects) limit('objects', PICKLE_LIMITS.objects);
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) fail('MARK expected but not found');
    stack = prev!;
    return items;
  };
  const str = (v: unknown, what: string): string => (typeof v === 'string' ? v : fail(`${what} must be a string`));
  const memoGet = (i: number | bigint): unknown => {
    if (typeof i !== 'number' || !memo.has(i)) fail(`memo key ${i} is not defined`);
    return memo.get(i as number);
  };
  const memoPut = (i: number | bigint): void => {
    if (typeof i !== 'number' || i < 0) fail(`bad memo key ${i}`);
    if (memo.size >= PICKLE_LIMITS.memo && !memo.has(i as number)) limit('memo entries', PICKLE_LIMITS.memo);
    memo.set(i as number, top());
  };

  const global = (module: string, name: string): unknown => {
    const v = opts.resolveGlobal?.(module, name);
    return v === undefined ? new PickleGlobal(module, name) : v;
  };
  const call = (callee: unknown, args: unknown, kwargs?: Map<unknown, unknown>): unknown => {
    if (!Array.isArray(args)) fail('call arguments must be a tuple');
    if (callee instanceof PickleGlobal || callee instanceof PickleCall) return new PickleCall(callee, Object.freeze([...(args as unknown[])]), kwargs);
    if (callee instanceof PyCallable) {
      if (kwargs && kwargs.size > 0) fail(`keyword arguments are not supported for ${callee.qualifiedName}`);
      return callee.fn(args as unknown[]);
    }
    return fail(`${describe(callee)} is not callable`);
  };
  const persistent = (pid: unknown): unknown =>
    opts.persistentLoad ? opts.persistentLoad(pid) : fail('persistent id found but this pickle must not have any');
  const setItems = (target: unknown, items: unknown[]): void => {
    if (items.length % 2 !== 0) fail('odd number of items for SETITEMS');
    for (let i = 0; i < items.length; i += 2) {
      if (target instanceof Map) target.set(items[i], items[i + 1]);
      else if (target instanceof PickleCall) target.dictItems.push([items[i], items[i + 1]]);
      else fail(`SETITEM(S) on ${describe(target)}`);
    }
  };
  const appendItems = (target: unknown, items: unknown[]): void => {
    if (Array.isArray(target) && !Object.isFrozen(target)) for (const it of items) target.push(it);
    else if (target instanceof PickleCall) for (const it of items) target.listItems.push(it);
    else fail(`APPEND(S) on ${describe(target)}`);
  };
  const addItems = (target: unknown, items: unknown[]): void => {
    if (target instanceof Set) for (const it of items) target.add(it);
    else if (target instanceof PickleCall) for (const it of items) target.listItems.push(it);
    else fail(`ADDITEMS on ${describe(target)}`);
  };

  try {
    for (;;) {
      opPos = r.pos;
      if (++opcodes > PICKLE_LIMITS.opcodes) limit('opcodes', PICKLE_LIMITS.opcodes);
      if (stack.length > PICKLE_LIMITS.stack) limit('items on its stack', PICKLE_LIMITS.stack);
      const op = r.u8('opcode');
      switch (op) {
        case 0x80: {
          // PROTO
          const v = r.u8('protocol');
          if (v > HIGHEST_PROTOCOL) fail(`unsupported pickle protocol ${v}`);
          break;
        }
        case 0x95: {
          // FRAME: a length hint only, since we read incrementally; still must fit the input.
          const n = r.u64('frame length');
          if (n > r.size - r.pos) r.fail('ERR_CHECKPOINT_TRUNCATED', `frame of ${n} bytes runs past the end`, opPos);
          break;
        }
        case 0x2e: // STOP
          if (metastack.length !== 0) fail('STOP inside an unclosed MARK');
          if (stack.length !== 1) fail(`STOP with ${stack.length} items on the stack`);
          return { value: stack[0], end: r.pos };

        // --- constants and numbers ---
        case 0x4e: stack.push(null); break; // NONE
        case 0x88: stack.push(true); break; // NEWTRUE
        case 0x89: stack.push(false); break; // NEWFALSE
        case 0x4a: stack.push(r.i32('BININT')); break;
        case 0x4b: stack.push(r.u8('BININT1')); break;
        case 0x4d: stack.push(r.u16('BININT2')); break;
        case 0x8a: stack.push(decodeLong(r.bytes(r.u8('LONG1 length'), 'LONG1'))); break;
        case 0x8b: stack.push(decodeLong(r.bytes(r.i32('LONG4 length'), 'LONG4'))); break;
        case 0x49: {
          // INT (protocol 0); "00" / "01" are how protocol 0 spells False / True
          const t = latin1(r.line('INT'));
          stack.push(t === '00' ? false : t === '01' ? true : parseIntText(t, r, 'INT'));
          break;
        }
        case 0x4c: stack.push(parseIntText(latin1(r.line('LONG')), r, 'LONG')); break;
        case 0x47: stack.push(r.f64be('BINFLOAT')); break;
        case 0x46: stack.push(parseFloatText(latin1(r.line('FLOAT')), r)); break;

        // --- strings and bytes ---
        case 0x58: stack.push(utf8.decode(r.bytes(r.u32('BINUNICODE length'), 'BINUNICODE'))); break;
        case 0x8c: stack.push(utf8.decode(r.bytes(r.u8('SHORT_BINUNICODE length'), 'SHORT_BINUNICODE'))); break;
        case 0x8d: stack.push(utf8.decode(r.bytes(r.u64('BINUNICODE8 length'), 'BINUNICODE8'))); break;
        case 0x56: stack.push(rawUnicodeEscape(r.line('UNICODE'))); break;
        // Python 2 str: torch.load decodes these with encoding='utf-8', so do we.
        case 0x54: stack.push(utf8.decode(r.bytes(r.i32('BINSTRING length'), 'BINSTRING'))); break;
        case 0x55: stack.push(utf8.decode(r.bytes(r.u8('SHORT_BINSTRING length'), 'SHORT_BINSTRING'))); break;
        case 0x53: {
          // STRING: a quoted Python literal
          const t = latin1(r.line('STRING'));
          const q = t[0];
          if (t.length < 2 || (q !== "'" && q !== '"') || t[t.length - 1] !== q) fail('STRING literal is not quoted');
          stack.push(utf8.decode(unescapePyBytes(t.slice(1, -1))));
          break;
        }
        case 0x42: stack.push(r.bytes(r.u32('BINBYTES length'), 'BINBYTES')); break;
        case 0x43: stack.push(r.bytes(r.u8('SHORT_BINBYTES length'), 'SHORT_BINBYTES')); break;
        case 0x8e: stack.push(r.bytes(r.u64('BINBYTES8 length'), 'BINBYTES8')); break;
        case 0x96: stack.push(r.bytes(r.u64('BYTEARRAY8 length'), 'BYTEARRAY8')); break;
        case 0x97: // NEXT_BUFFER
        case 0x98: // READONLY_BUFFER
          fail('out-of-band pickle buffers are not supported');
          break;

        // --- containers ---
        case 0x28: if (metastack.length >= PICKLE_LIMITS.marks) limit('nested MARKs', PICKLE_LIMITS.marks); metastack.push(stack); stack = []; break; // MARK
        case 0x29: grow(1); stack.push(Object.freeze([])); break; // EMPTY_TUPLE
        // popMark() replaces `stack`, so its result is taken before `stack.push` is looked up.
        case 0x74: { const items = popMark(); grow(1 + items.length); stack.push(Object.freeze(items)); break; } // TUPLE
        case 0x85: grow(2); stack.push(Object.freeze([pop()])); break; // TUPLE1
        case 0x86: { grow(3); const b = pop(); const a = pop(); stack.push(Object.freeze([a, b])); break; } // TUPLE2
        case 0x87: { grow(4); const c = pop(); const b = pop(); const a = pop(); stack.push(Object.freeze([a, b, c])); break; } // TUPLE3
        case 0x5d: grow(1); stack.push([]); break; // EMPTY_LIST
        case 0x6c: { const items = popMark(); grow(1 + items.length); stack.push(items); break; } // LIST
        case 0x61: { grow(1); const v = pop(); appendItems(top(), [v]); break; } // APPEND
        case 0x65: { const items = popMark(); grow(items.length); appendItems(top(), items); break; } // APPENDS
        case 0x7d: grow(1); stack.push(new Map()); break; // EMPTY_DICT
        case 0x64: { const items = popMark(); grow(1 + items.length); const m = new Map(); setItems(m, items); stack.push(m); break; } // DICT
        case 0x73: { grow(2); const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
        case 0x75: { const items = popMark(); grow(items.length); setItems(top(), items); break; } // SETITEMS
        case 0x8f: grow(1); stack.push(new Set()); break; // EMPTY_SET
        case 0x90: { const items = popMark(); grow(items.length); addItems(top(), items); break; } // ADDITEMS
        case 0x91: { const items = popMark(); grow(1 + items.length); stack.push(new Set(items)); break; } // FROZENSET

        // --- stack and memo ---
        case 0x30: pop(); break; // POP
        case 0x31: popMark(); break; // POP_MARK
        case 0x32: stack.push(top()); break; // DUP
        case 0x70: memoPut(parseIntText(latin1(r.line('PUT')), r, 'PUT')); break;
        case 0x71: memoPut(r.u8('BINPUT')); break;
        case 0x72: memoPut(r.u32('LONG_BINPUT')); break;
        case 0x94: memoPut(memo.size); break; // MEMOIZE
        case 0x67: stack.push(memoGet(parseIntText(latin1(r.line('GET')), r, 'GET'))); break;
        case 0x68: stack.push(memoGet(r.u8('BINGET'))); break;
        case 0x6a: stack.push(memoGet(r.u32('LONG_BINGET'))); break;

        // --- globals, calls, objects: never executed, only resolved through the allow-list ---
        case 0x63: {
          // GLOBAL
          const module = utf8.decode(r.line('GLOBAL module'));
          const name = utf8.decode(r.line('GLOBAL name'));
          stack.push(global(module, name));
          break;
        }
        case 0x93: { const name = str(pop(), 'STACK_GLOBAL name'); const module = str(pop(), 'STACK_GLOBAL module'); stack.push(global(module, name)); break; }
        case 0x52: { const args = pop(); const callee = pop(); stack.push(call(callee, args)); break; } // REDUCE
        case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ
        case 0x92: {
          // NEWOBJ_EX
          const kwargs = pop();
          const args = pop();
          const cls = pop();
          if (!(kwargs instanceof Map)) fail('NEWOBJ_EX keyword arguments must be a dict');
          stack.push(call(cls, args, kwargs as Map<unknown, unknown>));
          break;
        }
        case 0x69: {
          // INST: class named inline, arguments since MARK
          const module = utf8.decode(r.line('INST module'));
          const name = utf8.decode(r.line('INST name'));
          const args = popMark();
          stack.push(call(global(module, name), Object.freeze(args)));
          break;
        }
        case 0x6f: {
          // OBJ: class and arguments since MARK
          const items = popMark();
          if (items.length === 0) fail('OBJ without a class');
          stack.push(call(items[0], Object.freeze(items.slice(1))));
          break;
        }
        case 0x62: {
          // BUILD
          const state = pop();
          const target = top();
          if (target instanceof PickleCall) target.state = state;
          else if (opts.onBuild) opts.onBuild(target, state);
          else fail(`BUILD on ${describe(target)}`);
          break;
        }
        case 0x50: stack.push(persistent(utf8.decode(r.line('PERSID')))); break; // PERSID
        case 0x51: stack.push(persistent(pop())); break; // BINPERSID
        case 0x82: // EXT1
        case 0x83: // EXT2
        case 0x84: // EXT4
          fail('extension-registry opcodes (EXT1/2/4) are not supported');
          break;
        default:
          fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  } catch (e) {
    if (e instanceof JukeboxError) throw e;
    // e.g. RangeError from a string too long for V8: still a bad pickle, not a crash.
    throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${opts.label}: malformed pickle at byte ${opPos}: ${(e as Error).message}`, { cause: e });
  }
}

function describe(v: unknown): string {
  if (v instanceof PickleGlobal) return v.qualifiedName;
  if (v instanceof PickleCall) return `${v.global.qualifiedName}(...)`;
  if (v instanceof PyCallable) return v.qualifiedName;
  if (v === null) return 'None';
  if (isTuple(v)) return 'a tuple';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Map) return 'a dict';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
