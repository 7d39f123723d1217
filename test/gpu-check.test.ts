/**
 * `npm run gpu:check` (scripts/gpu-check.mjs) without a GPU: its --emulated mode against the
 * emulation build (build/cuda-emu), with tiny settings (a 1-layer 5b_lyrics-shaped random
 * model, a few tokens, the small parity shapes of one group). Checks the report's structure
 * (report.json, report.md, a log per step) and that every failed step carries its reason
 * (here: no nvidia-smi; `generate --backend cuda` refused while the library is the
 * emulation build or lacks the model kernels) while the others still run: the CPU runs, the
 * big model, the parity program. Needs build/cuda-emu (`npm run build:cuda-emu`); without it
 * the suite reports itself skipped (JUKEBOX_CUDA_EMU_REQUIRE=1, as in CI: a failure).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/fixtures.js';

const emuLib = join(repoRoot, 'build', 'cuda-emu', 'libjukebox-cuda.so');
const built = existsSync(emuLib) && existsSync(join(repoRoot, 'build', 'cuda-emu', 'jukebox-cuda-parity'));
const required = process.env.JUKEBOX_CUDA_EMU_REQUIRE === '1';
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-gpu-check-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Step { name: string; status: 'ok' | 'failed' | 'skipped'; seconds: number; limit: number; reason?: string; log: string; data?: Record<string, unknown> }

const STEPS = ['device', 'build', 'doctor', 'parity', 'bench', 'generate-cuda', 'generate-cpu', 'compare-default', 'big-model', 'big-cuda-timed', 'big-cuda', 'big-cpu', 'compare-big'];

describe('gpu:check --emulated', () => {
  it.runIf(required)('build/cuda-emu exists (JUKEBOX_CUDA_EMU_REQUIRE=1)', () => {
    expect(built, `${emuLib} missing: npm run build:cuda-emu`).toBe(true);
  });

  it.runIf(built)('runs every step, reports each failure with its reason, and writes one report', () => {
    const out = join(tmp, 'report');
    const args = [
      join(repoRoot, 'scripts', 'gpu-check.mjs'), '--emulated', '--out', out, '--work', join(tmp, 'work'),
      '--seconds', '1', '--seed', '3', '--big-layers', '1', '--big-prime-layers', '1', '--big-seconds', '0.02', '--big-compare-seconds', '0.02',
      '--parity-args', '--size small --only gemv', '--budget', '240', '--timeout', 'generate-cuda=30,big-cuda-timed=30,big-cuda=30',
    ];
    const env = { ...process.env };
    delete env.JUKEBOX_CUDA_LIB;
    const r = spawnSync(process.execPath, args, { cwd: repoRoot, env, encoding: 'utf8', timeout: 280_000 });
    expect(r.error).toBeUndefined();
    // exit 1: some steps failed (no GPU here), which is a report, not a crash
    expect([0, 1], r.stderr).toContain(r.status);
    expect(r.stderr).not.toMatch(/gpu-check: .*Error|at .*gpu-check\.mjs/);

    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as {
      format: string; mode: string; steps: Step[]; passed: string[]; failed: string[]; skipped: string[]; totalSeconds: number; cudaLibrary: string; device: unknown;
    };
    expect(report.format).toBe('jukebox-gpu-check/1');
    expect(report.mode).toBe('emulated');
    expect(report.cudaLibrary).toBe(emuLib);
    expect(report.steps.map((s) => s.name)).toEqual(STEPS);
    expect(report.totalSeconds).toBeLessThan(240);
    for (const s of report.steps) {
      expect(['ok', 'failed', 'skipped']).toContain(s.status);
      if (s.status !== 'ok') expect(s.reason, `${s.name} has no reason`).toMatch(/\w{3}/);
      if (s.status !== 'skipped') {
        expect(existsSync(join(out, s.log)), s.log).toBe(true);
        expect(s.seconds).toBeLessThanOrEqual(s.limit + 5);
      }
    }
    const step = (n: string) => report.steps.find((s) => s.name === n)!;
    expect(report.failed).toEqual(report.steps.filter((s) => s.status === 'failed').map((s) => s.name));
    expect(r.status).toBe(report.failed.length ? 1 : 0);

    // what cannot run here says why
    if (spawnSync('nvidia-smi', ['-L']).status !== 0) {
      expect(step('device')).toMatchObject({ status: 'failed' });
      expect(step('device').reason).toMatch(/nvidia-smi/);
      expect(report.device).toBeNull();
    }
    expect(step('build')).toMatchObject({ status: 'skipped' });
    expect(step('build').reason).toMatch(/emulated/);
    expect(step('bench').reason).toMatch(/emulat/);
    // the emulated library loads; doctor says so
    expect(step('doctor').status).toBe('ok');
    expect(step('doctor').data).toMatchObject({ library: emuLib, libraryLoaded: true, emulated: true });
    // the parity program ran on the emulator
    expect(step('parity').status).toBe('ok');
    expect(step('parity').data).toMatchObject({ casesFailed: 0 });
    expect((step('parity').data as { casesOk: number }).casesOk).toBeGreaterThan(0);
    // the CPU runs work; a CUDA run either works or fails with the CLI's reason
    expect(step('generate-cpu')).toMatchObject({ status: 'ok', data: { runBackend: 'cpu' } });
    expect(step('big-model').status).toBe('ok');
    expect(step('big-model').data).toMatchObject({ preset: 'prior_5b_lyrics', layers: 1, width: 4800 });
    expect(step('big-cpu')).toMatchObject({ status: 'ok', data: { runBackend: 'cpu' } });
    for (const n of ['generate-cuda', 'big-cuda-timed', 'big-cuda']) {
      const s = step(n);
      if (s.status === 'failed') expect(s.reason).toMatch(/jukebox: error: |timed out after|run\.json says backend/);
      else expect(s.data).toMatchObject({ runBackend: 'cuda' });
    }
    for (const [cmp, a] of [['compare-default', 'generate-cuda'], ['compare-big', 'big-cuda']]) {
      const s = step(cmp);
      if (step(a).status !== 'ok') expect(s).toMatchObject({ status: 'skipped', reason: expect.stringContaining(`needs ${a} (failed)`) });
      else expect(s.data).toHaveProperty('levels');
    }

    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/^# GPU check \(emulated\)/);
    for (const n of STEPS) expect(md).toContain(`| ${n} |`);
    expect(md).toContain('## Parity');
    expect(md).toContain('## Generation (same seed on both backends)');
    expect(md).toMatch(/5b_lyrics-shaped random \(1 layers/);
  }, 300_000);

  it('bad options are refused with exit 2 and what was wrong', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'gpu-check.mjs'), '--seconds', 'soon'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--seconds needs a non-negative number/);
  });
});
