#!/usr/bin/env node
/**
 * `npm run bench:dtype`: what `jukebox convert --dtype` costs in accuracy. For every fixture
 * prior (random weights, built by the original implementation) and for each prior of the
 * default model (trained weights, scored on codes it generated itself), the same window is
 * scored in forward mode with the weights as stored and converted to each dtype; printed:
 * the largest logit difference against the stored dtype and the change in bits per token.
 *
 * The fixtures' bits/token is that of random weights (about log2 of the vocabulary): only the
 * logit differences mean much there. The default model's changes are the ones a user sees.
 * int8 (weight-only, per-channel scales; only a prior's transformer matrices and x_out, the
 * VQ-VAE as stored) is scored twice: in forward mode (the packed GEMM, dequantised while
 * packing) and in cached mode ("int8 decode": the few-row int8 GEMV, against the stored
 * dtype decoded the same way).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const dist = (rel) => import(pathToFileURL(join(REPO, 'dist', rel)).href);
const DTYPES = ['f32', 'f16', 'bf16', 'int8'];

function readI32(rel) {
  const b = readFileSync(join(REPO, 'test', 'fixtures', rel));
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Score `input` with the prior at `path` and each dtype; rows of {dtype, maxLogitDiff, bits, deltaBits}. */
async function compare(path, input, work, tag) {
  const { convertCheckpoint, loadPrior } = await dist('index.js');
  const { scorePrior } = await dist('score.js');
  const score = async (p, mode = 'forward') => {
    const prior = await loadPrior(p);
    try {
      return await scorePrior(prior, { ...input(prior.structure), mode });
    } finally {
      prior.dispose();
    }
  };
  const stored = await score(path);
  const rows = [{ dtype: 'stored', maxLogitDiff: 0, bits: stored.bitsPerToken, deltaBits: 0 }];
  const row = (dtype, r, base) => ({ dtype, maxLogitDiff: maxAbsDiff(r.logits, base.logits), bits: r.bitsPerToken, deltaBits: r.bitsPerToken - base.bitsPerToken });
  for (const dtype of DTYPES) {
    const out = join(work, `${tag}-${dtype}.safetensors`);
    await convertCheckpoint(path, out, { dtype });
    rows.push(row(dtype, await score(out), stored));
    // int8 runs two kernels: the packed GEMM above (forward), and the few-row GEMV of
    // token-by-token decoding, scored here against the stored dtype decoded the same way
    if (dtype === 'int8') rows.push(row('int8 decode', await score(out, 'cached'), await score(path, 'cached')));
  }
  return rows;
}

/** Every model's rows: the fixture priors, then the default model's three priors. */
export async function dtypeReport() {
  const { convertCheckpoint, loadJukebox } = await dist('index.js');
  const { defaultLabels } = await dist('score.js');
  const work = mkdtempSync(join(tmpdir(), 'jukebox-dtype-'));
  const out = [];
  try {
    // Fixture priors: converted (as stored: f32) against the fixture VQ-VAE.
    const vq = join(work, 'vqvae.safetensors');
    await convertCheckpoint(join(REPO, 'test/fixtures/vqvae/vqvae.legacy.pth.tar'), vq);
    const manifest = JSON.parse(readFileSync(join(REPO, 'test/fixtures/priors/manifest.json'), 'utf8'));
    for (const name of ['upsampler_like', 'prior_5b_like', 'prior_5b_lyrics_like', 'prior_1b_lyrics_like']) {
      const path = join(work, `${name}.safetensors`);
      await convertCheckpoint(join(REPO, `test/fixtures/priors/${name}/prior.zip.pth.tar`), path, { vqvae: vq });
      const combined = name === 'prior_1b_lyrics_like';
      const n = manifest.files[`${name}/y.i32.bin`].shape[0];
      const input = () => ({
        n,
        y: readI32(`priors/${name}/y.i32.bin`),
        ...(combined ? { combined: readI32(`priors/${name}/combined_tokens.i32.bin`) } : { tokens: readI32(`priors/${name}/z.i32.bin`) }),
        ...(name === 'upsampler_like' ? { upper: readI32(`priors/${name}/z_cond.i32.bin`) } : {}),
      });
      out.push({ model: `fixture ${name} (random weights)`, rows: await compare(path, input, work, name) });
    }
    // The default model, on 6 s of codes it generates itself (seed 1).
    const jb = await loadJukebox();
    let codes;
    try {
      codes = (await jb.generate({ seconds: 6, seed: 1, outputDir: join(work, 'gen') })).codes;
    } finally {
      jb.dispose();
    }
    const modelDir = join(REPO, 'models/default');
    for (const level of [2, 1, 0]) {
      const path = join(modelDir, `prior_level_${level}.safetensors`);
      const input = (s) => {
        const z = codes[level][0].subarray(0, s.nCtx);
        const up = level < 2 ? codes[level + 1][0].subarray(0, s.nCtx / s.condDownsample) : undefined;
        return { n: 1, y: defaultLabels(s, 1), tokens: z, ...(up ? { upper: up } : {}) };
      };
      out.push({ model: `default model ${basename(path)}`, rows: await compare(path, input, work, `default-${level}`) });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

export function formatReport(report) {
  const lines = [];
  for (const { model, rows } of report) {
    lines.push(model);
    for (const r of rows) {
      lines.push(`  ${r.dtype.padEnd(11)} max |logit diff| ${r.maxLogitDiff.toExponential(2).padStart(9)}   bits/token ${r.bits.toFixed(4)}  (${r.deltaBits >= 0 ? '+' : ''}${r.deltaBits.toFixed(4)})`);
    }
  }
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(formatReport(await dtypeReport()));
}
