/**
 * Compute backends: the CPU engine (always there) and the optional CUDA backend, a separate
 * library (libjukebox-cuda.so, `npm run build:cuda`) that the addon loads at run time, so
 * the package installs and runs without CUDA. `backendInfo()` says what this machine has;
 * `resolveBackend()` turns a request ('auto' | 'cuda' | 'cpu') into the backend to use and
 * a sentence saying why, for the CLI and the API to print.
 */
import { JukeboxError } from './errors.js';
import { native, type NativeBackendInfo, type NativeCudaDevice } from './native.js';

export type Backend = 'auto' | 'cuda' | 'cpu';
export type ResolvedBackend = 'cpu' | 'cuda';

export const BACKENDS: readonly Backend[] = ['auto', 'cuda', 'cpu'];

export type CudaDeviceInfo = NativeCudaDevice;

/** What backendInfo() reports: the native report without the loader's internal version fields. */
export interface BackendInfo {
  cpu: NativeBackendInfo['cpu'];
  cuda: Omit<NativeBackendInfo['cuda'], 'expectedApiVersion' | 'apiVersion' | 'capabilities'>;
}

/**
 * What each backend can do on this machine. The CUDA library is probed once per process
 * (dlopen, version check, device query); this never throws for a missing CUDA.
 */
export function backendInfo(): BackendInfo {
  const { cpu, cuda } = native().backendInfo();
  // the loader's version fields are for the loader; the native report sets only present keys
  const { expectedApiVersion: _e, apiVersion: _a, capabilities: _c, ...publicCuda } = cuda;
  return { cpu, cuda: publicCuda };
}

export function isBackend(x: unknown): x is Backend {
  return typeof x === 'string' && (BACKENDS as readonly string[]).includes(x);
}

function describeDevice(d: CudaDeviceInfo): string {
  return `${d.name} (sm_${d.computeCapability.replace('.', '')}, ${(d.totalBytes / 2 ** 30).toFixed(0)} GiB)`;
}

/**
 * Picks the backend for a request: 'cpu' is always the CPU; 'cuda' is CUDA or a
 * JukeboxError ERR_BACKEND_UNAVAILABLE saying why not and what to do; 'auto' is CUDA when
 * it is available, else the CPU, with the reason. `info` defaults to backendInfo().
 */
export function resolveBackend(
  requested: Backend = 'auto',
  info: BackendInfo = backendInfo(),
): { backend: ResolvedBackend; reason: string } {
  if (!isBackend(requested)) {
    throw new JukeboxError(
      'ERR_INVALID_ARGUMENT',
      `unknown backend ${JSON.stringify(requested)}: use one of ${BACKENDS.map((b) => `'${b}'`).join(', ')}`,
    );
  }
  const cuda = info.cuda;
  const device = cuda.devices.find((d) => d.supported);
  if (requested === 'cpu') {
    return { backend: 'cpu', reason: `CPU backend requested (${info.cpu.isa}, ${info.cpu.threads} threads)` };
  }
  if (cuda.available && device) {
    const why = requested === 'cuda' ? 'CUDA backend requested' : 'auto: CUDA is available';
    return { backend: 'cuda', reason: `${why}: ${describeDevice(device)}` };
  }
  const reason = cuda.reason ?? 'the CUDA backend is not available';
  if (requested === 'cuda') {
    throw new JukeboxError(
      'ERR_BACKEND_UNAVAILABLE',
      `the CUDA backend was requested but cannot run here: ${reason}. ` +
        `Use backend 'auto' or 'cpu' (--backend auto|cpu) to run on the CPU.`,
    );
  }
  return {
    backend: 'cpu',
    reason: `auto: using the CPU (${info.cpu.isa}, ${info.cpu.threads} threads) because CUDA is unavailable: ${reason}`,
  };
}

/** A backend choice as a model records it: what was asked, what runs, and why. */
export interface BackendChoice {
  requested: Backend;
  used: ResolvedBackend;
  reason: string;
}

/**
 * The backend the engine's models run on for a request. 'cuda' runs on the CUDA library's
 * model path when it can (or fails saying why and what to do); 'auto' takes it when a real
 * GPU can run it, else the CPU, with the reason. The emulation build of the library (cuda/emu,
 * `JUKEBOX_CUDA_LIB=build/cuda-emu/libjukebox-cuda.so`) runs the same CUDA code on the CPU to
 * test it: it is used only when 'cuda' is asked for by name, never by 'auto'.
 */
export function engineBackend(requested: Backend = 'auto', info: BackendInfo = backendInfo()): BackendChoice {
  if (!isBackend(requested)) resolveBackend(requested, info); // throws naming the choices
  if (requested === 'cpu') return { requested, used: 'cpu', reason: resolveBackend('cpu', info).reason };
  const support = native().cudaModelSupport();
  if (support.ok && support.emulated) {
    if (requested === 'cuda') {
      return { requested, used: 'cuda', reason: `CUDA backend requested: ${info.cuda.library} is the emulation build (cuda (emulated on the CPU)), which runs the CUDA code on the CPU for testing` };
    }
    return { requested, used: 'cpu', reason: `auto: using the CPU (${info.cpu.isa}, ${info.cpu.threads} threads): the CUDA library found is the emulation build, which 'auto' never uses` };
  }
  const chosen = resolveBackend(requested, info);
  if (chosen.backend === 'cuda' && !support.ok) {
    const why = support.reason ?? 'the CUDA model path cannot run here';
    if (requested === 'cuda') throw new JukeboxError('ERR_BACKEND_UNAVAILABLE', `${chosen.reason}, but ${why}: use backend 'auto' or 'cpu'`);
    return { requested, used: 'cpu', reason: `auto: using the CPU (${info.cpu.isa}, ${info.cpu.threads} threads): ${chosen.reason}, but ${why}` };
  }
  return { requested, used: chosen.backend, reason: chosen.reason };
}
