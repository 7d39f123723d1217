/**
 * Loads the native addon (node-gyp-build: a local build in build/ first, then a matching
 * prebuild in prebuilds/) and gives its functions types. Native errors carry a `code`;
 * `wrapNative` turns them into JukeboxError so callers see one error type.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JukeboxError, type JukeboxErrorCode } from './errors.js';

export interface NativeConvParams {
  cin: number;
  cout: number;
  kernel: number;
  stride?: number;
  pad?: number;
  dilation?: number;
  transposed?: boolean;
}

/** A weight handed to native code: in-memory float32, or a slice of the mapped file. */
export type NativeWeight = Float32Array | { offset: number; nbytes: number; dtype: string };

export interface NativeConvSpec extends NativeConvParams {
  name: string;
  weight: NativeWeight;
  bias: NativeWeight;
}

export type NativeLayer =
  | { kind: 'conv'; conv: NativeConvSpec }
  | { kind: 'res'; a: NativeConvSpec; b: NativeConvSpec; scale: number };

export interface NativeStack {
  inChannels: number;
  outChannels: number;
  layers: NativeLayer[];
}

export interface NativeVQVAEPlan {
  file?: string;
  hopLengths: number[];
  encoders: NativeStack[];
  decoders: NativeStack[];
  codebooks: { bins: number; width: number; weight: NativeWeight }[];
  /** Where decode runs (default 'cpu'); encode always runs on the CPU engine. */
  backend?: 'cpu' | 'cuda';
}

export type ProgressFn = (done: number, total: number) => void;

export interface NativeAbortFlag {
  abort(): void;
  readonly aborted: boolean;
}

export interface NativeVQVAE {
  encode(
    audio: Float32Array,
    n: number,
    t: number,
    start: number,
    end: number,
    onProgress?: ProgressFn,
    abort?: NativeAbortFlag,
  ): Promise<Int32Array[]>;
  decode(
    codes: Int32Array,
    n: number,
    tLevel: number,
    level: number,
    onProgress?: ProgressFn,
    abort?: NativeAbortFlag,
  ): Promise<Float32Array>;
  encodeFlops(n: number, t: number, start: number, end: number): number;
  decodeFlops(n: number, tLevel: number, level: number): number;
  backend(): { backend: 'cpu' | 'cuda'; description: string };
  dispose(): void;
}

export interface NativeEpilogue {
  reluInput?: boolean;
  accumulate?: boolean;
  scale?: number;
}

export interface NativeKernels {
  conv1d(
    x: Float32Array,
    n: number,
    tin: number,
    weight: Float32Array,
    bias: Float32Array | null,
    params: NativeConvParams,
    impl: 'ref' | 'fast',
    epilogue?: NativeEpilogue,
    y?: Float32Array,
  ): Float32Array;
  resblock(
    x: Float32Array,
    n: number,
    t: number,
    wa: Float32Array,
    ba: Float32Array,
    pa: NativeConvParams,
    wb: Float32Array,
    bb: Float32Array,
    scale: number,
    impl: 'ref' | 'fast',
  ): Float32Array;
  matmul(a: Float32Array, b: Float32Array, M: number, K: number, N: number, impl: 'ref' | 'fast'): Float32Array;
  vqNearest(
    codebook: Float32Array,
    bins: number,
    width: number,
    x: Float32Array,
    n: number,
    impl: 'ref' | 'fast',
  ): Int32Array;
  benchConv(params: NativeConvParams, n: number, tin: number, reps: number, fusedResblock?: boolean): { seconds: number; flops: number };
  linear(
    x: Float32Array,
    M: number,
    K: number,
    w: Float32Array | Uint16Array | Int8Array,
    N: number,
    transposed: boolean,
    bias: Float32Array | null,
    impl: 'ref' | 'fast',
    // int8: one fp32 scale per output channel; dtype 'bf16': w (a Uint16Array) holds bf16
    scales?: Float32Array | null,
    dtype?: 'bf16',
  ): Float32Array;
  attention(
    shape: { func: number; len: number; blockCtx: number; heads: number; headDim: number; primeLen?: number; encLen?: number },
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    impl: 'ref' | 'fast',
  ): Float32Array;
  setIsa(isa: NativeIsa): string;
  info(): { isa: string; detectedIsa: string; threads: number };
  fmaPeak(seconds?: number): { gflopsOneThread: number; gflopsAllThreads: number; threads: number; isa: string };
  /** Memory bandwidth on all the pool's threads: memcpy (read + write) and a streaming read, GB/s. */
  memBandwidth(megabytes?: number): { copyGBs: number; readGBs: number; threads: number; megabytes: number };
}

/** The CPU kernels' instruction sets, widest first (`JUKEBOX_CPU` takes the same names; `avx2` too). */
export type NativeIsa = 'avx512' | 'avx2-fma' | 'generic';

export interface NativeCudaDevice {
  index: number;
  name: string;
  computeCapability: string;
  multiprocessors: number;
  totalBytes: number;
  supported: boolean;
}

export interface NativeBackendInfo {
  cpu: { available: true; isa: string; detectedIsa: string; threads: number };
  cuda: {
    /** Usable for generation: library, driver, a supported device, and every kernel. */
    available: boolean;
    /** Why not, and what to do (absent when available). */
    reason?: string;
    /** The CUDA backend library loaded, or the path last tried. */
    library?: string;
    /** Where the library was looked for, in order (JUKEBOX_CUDA_LIB alone when set). */
    searched: string[];
    libraryLoaded: boolean;
    expectedApiVersion: number;
    apiVersion?: number;
    buildInfo?: string;
    capabilities?: number;
    runtimeVersion?: number;
    driverVersion?: number;
    devices: NativeCudaDevice[];
    /** Where the library came from: 'JUKEBOX_CUDA_LIB', 'local build' (beside the addon, build/cuda/, prebuilds/) or 'package' (jukebox-node-linux-x64-cuda). */
    source?: string;
    /** The CUDA variant package module resolution found (also when its version was refused). */
    package?: { name: string; version: string; dir: string; expectedVersion: string };
  };
}

/** Whether the loaded CUDA library can run the models (the model ABI and a device to run on). */
export interface NativeCudaModelSupport {
  ok: boolean;
  /** The emulation build (cuda/emu): it runs only when the CUDA backend is asked for by name. */
  emulated: boolean;
  reason?: string;
}

export interface NativeAddon {
  abiVersion: number;
  backendInfo(): NativeBackendInfo;
  cudaModelSupport(): NativeCudaModelSupport;
  cudaSelfTest(device?: number): string;
  AbortFlag: new () => NativeAbortFlag;
  VQVAE: new (plan: NativeVQVAEPlan) => NativeVQVAE;
  kernels: NativeKernels;
}

export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    addon = load(packageRoot);
  } catch (e) {
    throw new JukeboxError(
      'ERR_NATIVE',
      `could not load the jukebox native addon (${(e as Error).message}). ` +
        `No prebuild matches this platform (${process.platform}-${process.arch}, node ${process.versions.node}) ` +
        `and no local build exists: run "npm rebuild jukebox-node" (needs python3, make and a C++17 compiler).`,
      { cause: e },
    );
  }
  return addon;
}

const KNOWN_CODES = new Set<string>([
  'ERR_CHECKPOINT_GLOBAL', 'ERR_CHECKPOINT_FORMAT', 'ERR_CHECKPOINT_TRUNCATED', 'ERR_MISSING_KEY',
  'ERR_UNEXPECTED_KEY', 'ERR_SHAPE_MISMATCH', 'ERR_DTYPE', 'ERR_HPARAMS', 'ERR_MODEL_KIND',
  'ERR_AUDIO_FORMAT', 'ERR_CODES', 'ERR_INVALID_ARGUMENT', 'ERR_IO', 'ERR_OUT_OF_MEMORY',
  'ERR_ABORTED', 'ERR_DISPOSED', 'ERR_NATIVE', 'ERR_BACKEND_UNAVAILABLE',
]);

/** Converts an error thrown by the addon into a JukeboxError (other errors pass through). */
export function toJukeboxError(e: unknown, context?: string): unknown {
  if (e instanceof JukeboxError) return e;
  const code = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
  if (e instanceof Error && typeof code === 'string') {
    if (KNOWN_CODES.has(code)) {
      const msg = context ? `${context}: ${e.message}` : e.message;
      return new JukeboxError(code as JukeboxErrorCode, msg, { cause: e });
    }
  }
  return e;
}

/** Runs a native call (sync or async) and rethrows its errors as JukeboxError. */
export async function wrapNative<T>(fn: () => T | Promise<T>, context?: string): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toJukeboxError(e, context);
  }
}

export function wrapNativeSync<T>(fn: () => T, context?: string): T {
  try {
    return fn();
  } catch (e) {
    throw toJukeboxError(e, context);
  }
}

/**
 * Runs an abortable native job: an AbortFlag follows `signal` (and is registered in
 * `inflight` so dispose() can stop it), and native errors come back as JukeboxError
 * prefixed with `context` (the model's path).
 */
export async function runAbortable<T>(
  signal: AbortSignal | undefined,
  inflight: Set<NativeAbortFlag>,
  context: string,
  call: (flag: NativeAbortFlag) => Promise<T>,
): Promise<T> {
  if (signal?.aborted) throw new JukeboxError('ERR_ABORTED', 'aborted before it started', { cause: signal.reason });
  const flag = new (native().AbortFlag)();
  const onAbort = () => flag.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  inflight.add(flag);
  try {
    return await call(flag);
  } catch (e) {
    throw toJukeboxError(e, context);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    inflight.delete(flag);
  }
}
