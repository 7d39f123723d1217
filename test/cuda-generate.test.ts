/**
 * `--backend cuda` end to end, under the emulated CUDA library (build/cuda-emu; CI requires
 * it with JUKEBOX_CUDA_EMU_REQUIRE=1): the whole model path — weights uploaded as stored,
 * prefill, the decode step's graph, sampling on the device, the VQ-VAE decoder — run on the
 * CPU by the emulator, against the CPU engine.
 *  - generate on the default model writes the same codes at every level as --backend cpu
 *    with the same seed (both store fp16 matrices; the Philox draws are shared), and
 *    run.json records the CUDA backend;
 *  - out of device memory (JUKEBOX_CUDA_EMU_MEMORY) is ERR_OUT_OF_MEMORY naming what did not
 *    fit, and the process goes on;
 *  - abort and dispose mid-window free the device memory (a model that fits only once loads
 *    again afterwards) and leave the process usable.
 * (Fixture logits through --backend cuda are in test/score.test.ts.)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { readNpz } from '../lib/npz.js';
import { cudaEmu } from './helpers/cuda-emu.js';
import { repoRoot } from './helpers/fixtures.js';

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-cuda-gen-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cli = join(repoRoot, 'bin', 'jukebox.js');

async function jukebox(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env: { ...env, CI: '1' }, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Runs an ES module script in a child process with the emulated library; returns its stdout lines. */
async function script(body: string, extra: Record<string, string> = {}): Promise<string> {
  const file = join(tmp, `script-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, `import * as jb from ${JSON.stringify(join(repoRoot, 'dist', 'index.js'))};\n${body}\n`);
  const { stdout } = await run(process.execPath, [file], { env: cudaEmu.env(extra), maxBuffer: 16 << 20 });
  return stdout;
}

const levelsOf = (dir: string) =>
  [0, 1, 2].map((l) => readNpz(join(dir, `codes_level_${l}.npz`)));

describe.runIf(cudaEmu.ready || cudaEmu.required)('--backend cuda under emulation', () => {
  it('the emulated library implements the model path', () => {
    expect(cudaEmu.ready, cudaEmu.reason).toBe(true);
  });

  it('generate --backend cuda --seconds 3 writes the codes --backend cpu writes, at every level; run.json says cuda', async () => {
    const cpu = join(tmp, 'cpu'), cuda = join(tmp, 'cuda');
    const args = ['generate', '--seconds', '3', '--seed', '11'];
    const a = await jukebox([...args, '-o', cpu, '--backend', 'cpu'], process.env);
    expect(a.code, a.stderr).toBe(0);
    const b = await jukebox([...args, '-o', cuda, '--backend', 'cuda'], cudaEmu.env());
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout + b.stderr).toMatch(/backend: CUDA backend requested: .*emulation build/);
    const want = levelsOf(cpu), got = levelsOf(cuda);
    for (let l = 0; l < 3; l++) {
      const w = Object.values(want[l])[0], g = Object.values(got[l])[0];
      expect(g.shape, `level ${l}`).toEqual(w.shape);
      expect(Array.from(g.data as Int32Array), `level ${l} codes`).toEqual(Array.from(w.data as Int32Array));
    }
    const runJson = JSON.parse(readFileSync(join(cuda, 'run.json'), 'utf8')) as { backend?: string };
    expect(runJson.backend).toBe('cuda');
    // The audio comes from the device's VQ-VAE decoder: the same samples within fp32 rounding
    // (at most 1 step of the 16-bit WAV).
    for (const f of ['sample_0.wav', 'level_1_sample_0.wav', 'level_2_sample_0.wav']) {
      const a = readFileSync(join(cpu, f)), b = readFileSync(join(cuda, f));
      expect(b.length, f).toBe(a.length);
      let worst = 0;
      for (let i = 44; i + 1 < a.length; i += 2) worst = Math.max(worst, Math.abs(a.readInt16LE(i) - b.readInt16LE(i)));
      expect(worst, f).toBeLessThanOrEqual(1);
    }
  }, 900_000);

  it('out of device memory is ERR_OUT_OF_MEMORY naming the model and the bytes, and the process goes on', async () => {
    const r = await jukebox(['generate', '--seconds', '3', '-o', join(tmp, 'oom'), '--backend', 'cuda'], cudaEmu.env({ JUKEBOX_CUDA_EMU_MEMORY: '256KiB' }));
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('jukebox: error:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/\[ERR_OUT_OF_MEMORY\]/);
    expect(lines[0]).toMatch(/safetensors/); // names the model file
    expect(lines[0]).toMatch(/MiB|KiB|bytes/); // and sizes
    // In one process: the failure is an Error, and the CPU backend then runs.
    const out = await script(`
      const { priors } = jb.defaultModelSet();
      const path = priors.filter(Boolean).at(-1);
      try { await jb.loadPrior(path, { backend: 'cuda' }); console.log('loaded?!'); }
      catch (e) { console.log('error', e.code); }
      const p = await jb.loadPrior(path, { backend: 'cpu' });
      console.log('cpu', p.backend.used);
      p.dispose();
    `, { JUKEBOX_CUDA_EMU_MEMORY: '256KiB' });
    expect(out).toMatch(/^error ERR_OUT_OF_MEMORY$/m);
    expect(out).toMatch(/^cpu cpu$/m);
  });

  it('int8 weights (convert --dtype int8) are refused by the CUDA backend with ERR_DTYPE, saying what to do', async () => {
    const out = join(tmp, 'top-int8.safetensors');
    const c = await jukebox(['convert', join(repoRoot, 'models/default/prior_level_2.safetensors'), '--dtype', 'int8', '-o', out], process.env);
    expect(c.code, c.stderr).toBe(0);
    const r = await script(`
      try { await jb.loadPrior(${JSON.stringify(out)}, { backend: 'cuda' }); console.log('loaded?!'); }
      catch (e) { console.log('error', e.code, e.message); }
      const p = await jb.loadPrior(${JSON.stringify(out)}, { backend: 'cpu' });
      console.log('cpu', p.backend.used);
      p.dispose();
    `);
    expect(r).toMatch(/^error ERR_DTYPE .*CPU backend only/m);
    expect(r).toMatch(/^cpu cpu$/m);
  });

  it('abort and dispose mid-window free the device memory and leave the process usable', async () => {
    const setup = `
      const { priors } = jb.defaultModelSet();
      const path = priors.filter(Boolean).at(-1);
      const load = () => jb.loadPrior(path, { backend: 'cuda' });`;
    // How much device memory one copy of the top prior holds, to give the next process room
    // for one copy and not two.
    const bytes = Number(/^bytes (\d+)$/m.exec(await script(`${setup}
      const p = await load(); console.log('bytes', p.runtime().deviceBytes); p.dispose();`))![1]);
    expect(bytes).toBeGreaterThan(0);
    const out = await script(`${setup}
      const p = await load();
      const s = p.structure, L = s.prior.len;
      const labels = new Int32Array(4 + s.labels.maxBowGenreSize);
      labels.set([Math.ceil(((s.labels.minDuration ?? 0) + 1) * s.labels.sr), 0, s.nCtx * s.rawToTokens, 0, 0]);
      const job = (signal, onProgress) => p.sampleWindow({ n: 1, tokens: new Int32Array(L), labels, seed: 3, signal, onProgress });
      const ac = new AbortController();
      try { await job(ac.signal, (t) => { if (t > 0) ac.abort(); }); console.log('finished?!'); }
      catch (e) { console.log('abort', e.code); }
      const again = await job();
      console.log('after abort', again.tokens.length === L);
      try { const extra = await load(); console.log('second copy fits?!'); extra.dispose(); } catch (e) { console.log('second copy', e.code); }
      // dispose while a window runs: the promise settles with an error and the memory is freed
      const pending = job(undefined, () => {});
      setTimeout(() => p.dispose(), 20);
      try { await pending; console.log('dispose: finished first'); } catch (e) { console.log('dispose', e.code); }
      await new Promise((r) => setTimeout(r, 200));
      const q = await load();
      console.log('reload', q.backend.used);
      q.dispose();
    `, { JUKEBOX_CUDA_EMU_MEMORY: String(Math.floor(bytes * 1.5)) });
    expect(out).toMatch(/^abort ERR_ABORTED$/m);
    expect(out).toMatch(/^after abort true$/m);
    expect(out).toMatch(/^second copy ERR_OUT_OF_MEMORY$/m);
    expect(out).toMatch(/^dispose (ERR_ABORTED|ERR_DISPOSED)$|^dispose: finished first$/m);
    expect(out).toMatch(/^reload cuda$/m);
  });
});

if (!cudaEmu.ready && !cudaEmu.required) console.warn(`cuda-generate: skipped: ${cudaEmu.reason}`);
