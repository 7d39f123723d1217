/**
 * `jukebox doctor`: what this machine offers and what would run, in the spirit of
 * `node-llama-cpp inspect gpu`: Node and platform, the CPU and the kernel ISA the engine
 * picked, threads, which native addon file loaded (a prebuild or a local build), the CUDA
 * backend library (where it was found, its version, emulated or real), the driver and
 * devices, and for each backend whether `auto` would choose it and why. It never throws for
 * something missing: a missing piece is a line in the report saying what to do.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join, relative, sep } from 'node:path';
import { backendInfo, resolveBackend, type BackendInfo } from './backend.js';
import { native, packageRoot } from './native.js';
import { defaultModelDir } from './model-set.js';

export interface DoctorReport {
  package: { name: string; version: string; root: string };
  node: { version: string; abi: string; napi: string; platform: string; arch: string; glibc?: string };
  cpu: { model: string; logicalCores: number; isa?: string; detectedIsa?: string; threads?: number; overrides: Record<string, string> };
  memory: { totalBytes: number; freeBytes: number };
  addon: { loaded: boolean; file?: string; kind?: 'prebuild' | 'local build' | 'other'; error?: string };
  cuda?: BackendInfo['cuda'] & {
    emulated: boolean;
    /** Where the library came from: 'JUKEBOX_CUDA_LIB', 'local build' or 'package' (absent: none found). */
    source?: string;
    /** The CUDA variant package module resolution found (also when its version was refused). */
    package?: CudaPackageReport;
  };
  /** Per backend: can it run here, would `auto` pick it, and why. */
  backends: { name: 'cpu' | 'cuda'; usable: boolean; chosenByAuto: boolean; why: string }[];
  defaultModel: { dir: string; present: boolean };
}

/** The CUDA variant package (jukebox-node-linux-x64-cuda) as the loader found it, with its build record. */
export interface CudaPackageReport {
  name: string;
  version: string;
  dir: string;
  /** The version it must have: this package's. */
  expectedVersion: string;
  versionMatches: boolean;
  /** Its jukebox-cuda.json (what it was built with), when readable. */
  build?: {
    cuda?: string;
    nvcc?: string;
    architectures?: string[];
    abiVersion?: number;
    cudaRuntime?: string;
    minDriver?: string;
    needs?: string[];
    sha256?: string;
    builtAt?: string;
  };
  buildError?: string;
}

/** What the addon reports about the library's origin (lib/native.ts types the older fields). */
interface NativeCudaOrigin {
  source?: string;
  package?: { name: string; version: string; dir: string; expectedVersion: string };
}

function cudaPackage(p: NonNullable<NativeCudaOrigin['package']>): CudaPackageReport {
  const out: CudaPackageReport = { ...p, versionMatches: p.version === p.expectedVersion };
  try {
    const m = JSON.parse(readFileSync(join(p.dir, 'jukebox-cuda.json'), 'utf8')) as Record<string, unknown>;
    const pick = ['cuda', 'nvcc', 'architectures', 'abiVersion', 'cudaRuntime', 'minDriver', 'needs', 'sha256', 'builtAt'] as const;
    out.build = Object.fromEntries(pick.filter((k) => m[k] !== undefined).map((k) => [k, m[k]])) as CudaPackageReport['build'];
  } catch (e) {
    out.buildError = `no readable jukebox-cuda.json in ${p.dir}: ${(e as Error).message}`;
  }
  return out;
}

const ENV_KNOBS = ['JUKEBOX_CPU', 'JUKEBOX_THREADS', 'JUKEBOX_SPIN_US', 'JUKEBOX_CUDA_LIB'];

function packageJson(): { name: string; version: string } {
  try {
    const p = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { name?: string; version?: string };
    return { name: p.name ?? 'jukebox-node', version: p.version ?? 'unknown' };
  } catch {
    return { name: 'jukebox-node', version: 'unknown' };
  }
}

function addonFile(): { file?: string; kind?: DoctorReport['addon']['kind'] } {
  try {
    const resolve = (createRequire(import.meta.url)('node-gyp-build') as { resolve(dir: string): string }).resolve;
    const file = resolve(packageRoot);
    const rel = relative(packageRoot, file).split(sep);
    return { file, kind: rel[0] === 'prebuilds' ? 'prebuild' : rel[0] === 'build' ? 'local build' : 'other' };
  } catch {
    return {};
  }
}

export function doctorReport(): DoctorReport {
  const pkg = packageJson();
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const cpus = os.cpus();
  const report: DoctorReport = {
    package: { ...pkg, root: packageRoot },
    node: {
      version: process.versions.node, abi: process.versions.modules, napi: process.versions.napi ?? 'unknown',
      platform: process.platform, arch: process.arch, ...(header?.glibcVersionRuntime ? { glibc: header.glibcVersionRuntime } : {}),
    },
    cpu: {
      model: cpus[0]?.model.trim() ?? 'unknown',
      logicalCores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
      overrides: Object.fromEntries(ENV_KNOBS.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!])),
    },
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
    addon: { loaded: false, ...addonFile() },
    backends: [],
    defaultModel: { dir: defaultModelDir(), present: false },
  };
  try {
    readFileSync(join(report.defaultModel.dir, 'model.json'));
    report.defaultModel.present = true;
  } catch {
    // reported as absent
  }
  let info: BackendInfo;
  try {
    native();
    report.addon.loaded = true;
    info = backendInfo();
  } catch (e) {
    report.addon.error = (e as Error).message;
    report.backends.push({ name: 'cpu', usable: false, chosenByAuto: false, why: `the native addon did not load: ${(e as Error).message}` });
    report.backends.push({ name: 'cuda', usable: false, chosenByAuto: false, why: 'the CUDA backend is loaded by the native addon, which did not load' });
    return report;
  }
  report.cpu = { ...report.cpu, isa: info.cpu.isa, detectedIsa: info.cpu.detectedIsa, threads: info.cpu.threads };
  const emulated = /emulated on the CPU/.test(info.cuda.reason ?? '') || /emulat/i.test(info.cuda.buildInfo ?? '');
  const origin = info.cuda as BackendInfo['cuda'] & NativeCudaOrigin;
  const { package: variant, ...cudaRest } = origin;
  report.cuda = { ...cudaRest, emulated, ...(variant ? { package: cudaPackage(variant) } : {}) };
  const auto = resolveBackend('auto', info);
  report.backends.push({
    name: 'cpu',
    usable: true,
    chosenByAuto: auto.backend === 'cpu',
    why: `${info.cpu.isa} kernels${info.cpu.isa !== info.cpu.detectedIsa ? ` (forced; the CPU offers ${info.cpu.detectedIsa})` : ''}, ${info.cpu.threads} threads${auto.backend === 'cpu' ? '; auto picks it while CUDA cannot run (below)' : ''}`,
  });
  report.backends.push({
    name: 'cuda',
    usable: info.cuda.available,
    chosenByAuto: auto.backend === 'cuda',
    why: info.cuda.available ? auto.reason : (info.cuda.reason ?? 'the CUDA backend is not available'),
  });
  return report;
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

export function formatDoctor(r: DoctorReport): string {
  const L: string[] = [];
  L.push(`${r.package.name} ${r.package.version} (${r.package.root})`);
  L.push(`node:      ${r.node.version} (ABI ${r.node.abi}, N-API ${r.node.napi}), ${r.node.platform}-${r.node.arch}${r.node.glibc ? `, glibc ${r.node.glibc}` : ''}`);
  L.push(`cpu:       ${r.cpu.model}, ${r.cpu.logicalCores} logical cores${r.cpu.isa ? `; kernels ${r.cpu.isa} (detected ${r.cpu.detectedIsa}), ${r.cpu.threads} threads` : ''}`);
  if (Object.keys(r.cpu.overrides).length) L.push(`env:       ${Object.entries(r.cpu.overrides).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  L.push(`memory:    ${gib(r.memory.totalBytes)} (${gib(r.memory.freeBytes)} free)`);
  L.push(`addon:     ${r.addon.loaded ? `${r.addon.kind ?? 'loaded'}: ${r.addon.file}` : `NOT LOADED: ${r.addon.error}`}`);
  if (r.cuda) {
    const c = r.cuda;
    const from = c.source ? ` [${c.source}]` : '';
    L.push(`cuda lib:  ${c.libraryLoaded ? `${c.library}${from}${c.emulated ? ' (emulated on the CPU)' : ''}${c.buildInfo ? `, ${c.buildInfo}` : ''}` : c.library ? `${c.library}${from}, not loaded (below)` : `not found (searched: ${c.searched.join(', ') || 'nothing'})`}`);
    if (c.package) {
      const p = c.package;
      const b = p.build;
      L.push(
        `cuda pkg:  ${p.name} ${p.version}${p.versionMatches ? '' : ` (MISMATCH: this package is ${p.expectedVersion})`} (${p.dir})` +
          (b ? `; built with CUDA ${b.cuda ?? '?'}, ${(b.architectures ?? []).join(' ')}, ${b.cudaRuntime ?? '?'} runtime, needs driver >= ${b.minDriver ?? '?'}` : `; ${p.buildError}`),
      );
    }
    if (c.runtimeVersion || c.driverVersion) L.push(`cuda:      runtime ${c.runtimeVersion ?? '?'}, driver ${c.driverVersion ?? 'none'}`);
    for (const d of c.devices) L.push(`device:    ${d.name}, sm_${d.computeCapability.replace('.', '')}, ${gib(d.totalBytes)}${d.supported ? '' : ' (not supported)'}`);
  }
  for (const b of r.backends) L.push(`backend ${b.name.padEnd(4)} ${b.usable ? (b.chosenByAuto ? 'usable, chosen by auto' : 'usable') : 'not usable'}: ${b.why}`);
  L.push(`model:     default model ${r.defaultModel.present ? 'present' : 'MISSING'} (${r.defaultModel.dir})`);
  return L.join('\n');
}
