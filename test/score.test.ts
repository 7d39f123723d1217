/**
 * `jukebox score --dump-logits` in its three modes against the ORIGINAL implementation's
 * logits for every fixture prior: full forward (logits_forward), KV-cached decoding
 * teacher-forced with the original's samples (sample_logits), and a prefix prefilled then
 * decoded (primed_logits); fp16-weight variants against logits_forward_fp16weights. The
 * legacy-format checkpoints are checked too when ../shared is present.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { readNpz, writeNpz } from '../lib/npz.js';
import { loadPrior } from '../lib/prior/prior.js';
import { scorePrior, type ScoreMode } from '../lib/score.js';
import { fixture, hasShared, readF32, readI32, repoRoot, sharedFixturesDir } from './helpers/fixtures.js';
import { maxAbsDiff } from './helpers/random.js';

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-score-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const vqvae = fixture('vqvae/vqvae.legacy.pth.tar');
const manifest = JSON.parse(readFileSync(fixture('priors/manifest.json'), 'utf8')) as {
  files: Record<string, { description: string; shape: number[] }>;
};

function primedPrefix(name: string): number {
  return Number(/first (\d+) tokens are the given prefix/.exec(manifest.files[`${name}/primed_tokens.i32.bin`].description)![1]);
}

/** The score inputs for a mode: y, and the teacher-forced tokens (combined for 1b). */
function inputs(name: string, mode: ScoreMode) {
  const combinedModel = name === 'prior_1b_lyrics_like';
  const yShape = manifest.files[`${name}/y.i32.bin`].shape;
  const tokFile = mode === 'forward' ? (combinedModel ? 'combined_tokens' : 'z') : mode === 'sample' ? 'sample_tokens' : 'primed_tokens';
  const tok = readI32(`priors/${name}/${tokFile}.i32.bin`);
  const arrays: Record<string, { dtype: 'int32'; shape: number[]; data: Int32Array }> = {
    y: { dtype: 'int32', shape: yShape, data: readI32(`priors/${name}/y.i32.bin`) },
    [combinedModel ? 'combined' : 'tokens']: { dtype: 'int32', shape: [2, tok.length / 2], data: tok },
  };
  if (name === 'upsampler_like') {
    const up = readI32(`priors/${name}/z_cond.i32.bin`);
    arrays.upper = { dtype: 'int32', shape: [2, up.length / 2], data: up };
  }
  return arrays;
}

const refFile = { forward: 'logits_forward', sample: 'sample_logits', primed: 'primed_logits' } as const;
const names = ['upsampler_like', 'prior_5b_like', 'prior_5b_lyrics_like', 'prior_1b_lyrics_like'];

describe.each(names)('jukebox score: %s', (name) => {
  it.each(['forward', 'sample', 'primed'] as const)('--mode %s --dump-logits reproduces the original within 1e-4', async (mode) => {
    const inp = join(tmp, `${name}-${mode}.npz`);
    writeNpz(inp, inputs(name, mode));
    const out = join(tmp, `${name}-${mode}-logits.npz`);
    const args = [join(repoRoot, 'bin', 'jukebox.js'), 'score', fixture(`priors/${name}/prior.zip.pth.tar`), '--vqvae', vqvae, '--inputs', inp, '--mode', mode, '--dump-logits', out];
    if (mode === 'primed') args.push('--prefix', String(primedPrefix(name)));
    const r = await run(process.execPath, args);
    expect(r.stdout).toMatch(/bits per token/);
    const logits = readNpz(out).logits.data as Float32Array;
    expect(maxAbsDiff(logits, readF32(`priors/${name}/${refFile[mode]}.f32.bin`))).toBeLessThan(1e-4);
  });
});

describe('fp16 weights and legacy checkpoints', () => {
  it.each(['prior_5b_like', 'prior_5b_lyrics_like'])('%s fp16: forward within 5e-3 of the original', async (name) => {
    const p = await loadPrior(fixture(`priors/${name}/prior.fp16.zip.pth.tar`), { vqvae });
    const x = inputs(name, 'forward');
    const r = await scorePrior(p, { n: 2, y: x.y.data, tokens: x.tokens.data, mode: 'forward' });
    expect(maxAbsDiff(r.logits, readF32(`priors/${name}/logits_forward_fp16weights.f32.bin`))).toBeLessThan(5e-3);
    p.dispose();
  });

  it.skipIf(!hasShared)('legacy-format checkpoints (../shared) give the same logits in every mode', async () => {
    for (const name of names) {
      for (const file of ['prior.legacy.pth.tar', ...(name.includes('5b') ? ['prior.fp16.legacy.pth.tar'] : [])]) {
        const p = await loadPrior(join(sharedFixturesDir, name, file), { vqvae });
        for (const mode of file.includes('fp16') ? (['forward'] as const) : (['forward', 'sample', 'primed'] as const)) {
          const x = inputs(name, mode);
          const r = await scorePrior(p, {
            n: 2, y: x.y.data, tokens: x.tokens?.data, combined: x.combined?.data, upper: x.upper?.data, mode,
            prefix: mode === 'primed' ? primedPrefix(name) : undefined,
          });
          const ref = file.includes('fp16') ? 'logits_forward_fp16weights' : refFile[mode];
          expect(maxAbsDiff(r.logits, readF32(`priors/${name}/${ref}.f32.bin`)), `${name} ${file} ${mode}`).toBeLessThan(file.includes('fp16') ? 5e-3 : 1e-4);
        }
        p.dispose();
      }
    }
  });
});
