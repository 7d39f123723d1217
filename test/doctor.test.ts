/**
 * `jukebox doctor [--json]` as a user runs it: what the machine offers (Node, CPU, kernel
 * ISA, threads), which addon file loaded, the CUDA library (absent here, or a given path
 * that does not exist: a reason, never a crash), and each backend with why auto would or
 * would not pick it; environment overrides are reported and honoured.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/fixtures.js';

function doctor(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/jukebox.js'), 'doctor', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('jukebox doctor', () => {
  it('--json: platform, CPU, addon file, and a backend verdict each', () => {
    const r = doctor(['--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.node).toMatchObject({ version: process.versions.node, platform: process.platform, arch: process.arch });
    expect(j.cpu.logicalCores).toBeGreaterThan(0);
    expect(['avx2-fma', 'generic', 'avx512']).toContain(j.cpu.isa);
    expect(j.addon.loaded).toBe(true);
    expect(['local build', 'prebuild']).toContain(j.addon.kind);
    expect(j.addon.file).toMatch(/\.node$/);
    const names = j.backends.map((b: { name: string }) => b.name);
    expect(names).toEqual(['cpu', 'cuda']);
    const cpu = j.backends[0], cuda = j.backends[1];
    expect(cpu.usable).toBe(true);
    expect(cpu.chosenByAuto || cuda.chosenByAuto).toBe(true);
    if (!cuda.usable) expect(cuda.why.length).toBeGreaterThan(10);
    expect(j.defaultModel.present).toBe(true);
  });

  it('a CUDA library path that does not exist is a reason, and overrides are shown and honoured', () => {
    const r = doctor(['--json'], { JUKEBOX_CUDA_LIB: '/nonexistent/libjukebox-cuda.so', JUKEBOX_CPU: 'generic', JUKEBOX_THREADS: '1' });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.cpu.overrides).toMatchObject({ JUKEBOX_CPU: 'generic', JUKEBOX_THREADS: '1' });
    expect(j.cpu.isa).toBe('generic');
    expect(j.cpu.threads).toBe(1);
    expect(j.backends[1].usable).toBe(false);
    expect(j.backends[1].why).toContain('/nonexistent/libjukebox-cuda.so');
    expect(j.backends[0].chosenByAuto).toBe(true);
  });

  it('the text form has one line per fact', () => {
    const r = doctor([]);
    expect(r.code).toBe(0);
    for (const head of ['node:', 'cpu:', 'memory:', 'addon:', 'backend cpu', 'backend cuda', 'model:']) expect(r.stdout).toContain(head);
  });
});
