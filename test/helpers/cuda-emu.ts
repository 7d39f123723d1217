/**
 * The emulated CUDA backend for tests that run the `--backend cuda` model path on the CPU:
 * build/cuda-emu/libjukebox-cuda.so (npm run build:cuda-emu), chosen with JUKEBOX_CUDA_LIB in
 * child processes (the addon probes the library once per process). `cudaEmu.ready` says
 * whether that build implements the model path; with JUKEBOX_CUDA_EMU_REQUIRE=1 (CI) a test
 * file asserts it instead of skipping.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './fixtures.js';

const lib = join(repoRoot, 'build', 'cuda-emu', 'libjukebox-cuda.so');

function probe(): { ok: boolean; reason: string } {
  if (!existsSync(lib)) return { ok: false, reason: `${lib} is not built (npm run build:cuda-emu)` };
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    `import { native } from ${JSON.stringify(join(repoRoot, 'dist', 'native.js'))}; console.log(JSON.stringify(native().cudaModelSupport()));`],
  { env: { ...process.env, JUKEBOX_CUDA_LIB: lib }, encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, reason: `probing ${lib} failed: ${r.stderr}` };
  const s = JSON.parse(r.stdout.trim()) as { ok: boolean; emulated: boolean; reason?: string };
  return s.ok && s.emulated ? { ok: true, reason: '' } : { ok: false, reason: s.reason ?? 'not the emulation build' };
}

const status = probe();

export const cudaEmu = {
  lib,
  ready: status.ok,
  reason: status.reason,
  required: process.env.JUKEBOX_CUDA_EMU_REQUIRE === '1',
  /** The environment a child process runs the emulated CUDA backend with. */
  env: (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ ...process.env, JUKEBOX_CUDA_LIB: lib, ...extra }),
};
