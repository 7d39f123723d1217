/**
 * Batched decoding draws what single runs draw. A batch of 4 samples runs its attention
 * (samples x heads) and its per-sample sampling (filtered probabilities + Philox draw) as
 * parallel tasks on the pool; those splits must not change a token: sample b of a batch
 * equals a run of that sample alone (sampleOffset b), and the batch equals itself run in a
 * process with one thread (JUKEBOX_THREADS=1, where every task runs in order on the caller).
 *
 * The model is sized so that on a machine with 2+ threads the parallel paths are actually
 * taken: 2048 bins (4 samples x 2048 bins is above the pool's 2 MFLOP-equivalent threshold
 * for the sampling), and a dense layer of state 256 whose KV reads pass the threshold once
 * 4 samples read ~250 positions (one sample ~1000: then its 2 heads are the tasks); prefill
 * in chunks takes the per-sample chunk path. Its
 * GEMVs are small enough that matmul uses one K band at batch 1 and at batch 4 (the band
 * count depends on the op's size), so the single runs' arithmetic is the batch's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors, readSafetensorsHeader, type SafetensorsWriteTensor } from '../lib/checkpoint/index.js';
import { defaults } from '../lib/hparams/presets.js';
import { native } from '../lib/native.js';
import { priorKeys, priorPlan } from '../lib/prior/layout.js';
import { priorStructure, type PriorStructure } from '../lib/prior/structure.js';
import { vqvaeHparams } from '../lib/vqvae/hparams.js';
import { randn, rng } from './helpers/random.js';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

interface NativePrior {
  sample(o: Record<string, unknown>): Promise<{ tokens: Int32Array; logits?: Float32Array }>;
  dispose(): void;
}

const vq = vqvaeHparams({ ...defaults(), levels: 3, downs_t: [3, 2, 2], strides_t: [2, 2, 2], emb_width: 8, l_bins: 2048, width: 8, depth: 1 }, 'test');

const N = 4, END = 320;
const options: [string, Record<string, number>][] = [
  ['temperature 0.9', { temperature: 0.9 }],
  ['top-k 64', { temperature: 1, topK: 64 }],
  ['top-p 0.8', { temperature: 1.1, topP: 0.8 }],
];

let tmp: string;
let planFile: string;
let s: PriorStructure;
let prior: NativePrior;
let yCond: Float32Array;  // N x width
/** Sample b's conditioning alone. */
const yRow = (b: number) => yCond.slice(b * s.prior.width, (b + 1) * s.prior.width);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'jukebox-batch-'));
  // Top level, label-conditioned (each sample its own yCond row), four layers: row, column,
  // previous block (blocks of 160: the prefill chunks of 7 below cross a block boundary),
  // dense. The tests decode the first END positions, and the last 80 after a prefix.
  s = priorStructure(
    { ...defaults(), labels: true, y_bins: [4, 5], t_bins: 8, max_bow_genre_size: 1, min_duration: 1, max_duration: 100, level: 2, n_ctx: 1280, prior_width: 256, m_attn: 1, heads: 2, prior_depth: 4, attn_order: 9, blocks: 8 },
    vq,
    'random',
  );
  const rand = rng(11);
  const tensors: SafetensorsWriteTensor[] = [...priorKeys(s)].map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    // LayerNorm weights 1; small matrices so the logits stay O(1) and the draws vary
    const data = /ln(_\d)?\.weight$/.test(name) ? new Float32Array(n).fill(1) : randn(n, rand, shape.length === 1 ? 0.1 : 0.06);
    return { name, dtype: 'F32', shape, nbytes: data.byteLength, source: new Uint8Array(data.buffer) };
  });
  const file = join(tmp, 'prior.safetensors');
  await writeSafetensors(file, tensors, {});
  const header = readSafetensorsHeader(file);
  const ref = (key: string) => {
    const t = header.tensors.get(key)!;
    return { offset: header.dataOffset + t.begin, nbytes: t.end - t.begin, dtype: t.dtype };
  };
  // A plan of file offsets only, so a child process can build the same prior from JSON.
  planFile = join(tmp, 'plan.json');
  writeFileSync(planFile, JSON.stringify({ file, ...priorPlan(s, ref) }));
  const P = (native() as unknown as { Prior: new (plan: unknown) => NativePrior }).Prior;
  prior = new P(JSON.parse(readFileSync(planFile, 'utf8')));
  yCond = randn(N * s.prior.width, rng(21));
});

afterAll(() => {
  prior?.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The same sample() call in a fresh process whose pool has one thread. */
function sampleOneThread(opts: Record<string, unknown>, tokens: Int32Array, y: Float32Array = yCond): Int32Array {
  const script = `
    const fs = require('node:fs');
    const a = require('node-gyp-build')(${JSON.stringify(packageRoot)});
    const p = new a.Prior(JSON.parse(fs.readFileSync(${JSON.stringify(planFile)}, 'utf8')));
    const o = JSON.parse(process.argv[1]);
    o.tokens = Int32Array.from(o.tokens);
    o.yCond = Float32Array.from(o.yCond);
    p.sample(o).then((r) => { process.stdout.write(JSON.stringify(Array.from(r.tokens))); p.dispose(); });`;
  // (float32 -> double -> JSON -> float32 is exact)
  const arg = JSON.stringify({ ...opts, tokens: Array.from(tokens), yCond: Array.from(y) });
  const out = execFileSync(process.execPath, ['-e', script, arg], {
    cwd: packageRoot, encoding: 'utf8', env: { ...process.env, JUKEBOX_THREADS: '1' }, maxBuffer: 64 << 20,
  });
  return Int32Array.from(JSON.parse(out));
}

describe('batched decoding', () => {
  it.each(options)('%s: a batch of 4 gives the tokens of 4 single runs', async (_name, o) => {
    const L = s.prior.len;
    const batch = (await prior.sample({ n: N, end: END, tokens: new Int32Array(N * L), yCond, seed: 5, ...o })).tokens;
    // the draws are not degenerate: samples differ and use many bins
    expect(new Set(batch).size).toBeGreaterThan(50);
    expect([...batch.subarray(0, L)]).not.toEqual([...batch.subarray(L, 2 * L)]);
    for (let b = 0; b < N; b++) {
      const one = (await prior.sample({ n: 1, end: END, tokens: new Int32Array(L), yCond: yRow(b), seed: 5, sampleOffset: b, ...o })).tokens;
      expect([...one], `sample ${b}`).toEqual([...batch.subarray(b * L, (b + 1) * L)]);
    }
  });

  it('a batch of 16 (the most the few-row matrix kernels take) gives each sample the logits of its run alone', async () => {
    // matmul splits K into bands by the weight's shape alone, not by the batch: at 16 rows
    // the band count used to grow with the op's size (this model: 1 band alone, 6 at 16)
    const L = s.prior.len, w = s.prior.width, B = 16, steps = 24;
    const y16 = randn(B * w, rng(23));
    const opts = { end: steps, seed: 3, temperature: 1, recordLogits: true };
    const batchLogits = (await prior.sample({ ...opts, n: B, tokens: new Int32Array(B * L), yCond: y16 })).logits!;
    const bins = batchLogits.length / (B * steps);
    expect(bins).toBe(2048);
    for (const b of [0, 5, 15]) {
      const one = (await prior.sample({ ...opts, n: 1, sampleOffset: b, tokens: new Int32Array(L), yCond: y16.slice(b * w, (b + 1) * w) })).logits!;
      const mine = batchLogits.subarray(b * steps * bins, (b + 1) * steps * bins);
      expect(one.length).toBe(mine.length);
      // (the first differing logit, not toEqual: a diff of 49k floats takes minutes to print)
      expect(one.findIndex((v, i) => !Object.is(v, mine[i])), `sample ${b}: first differing logit`).toBe(-1);
    }
  });

  it.each(options)('%s: the pool-parallel batch equals the one-thread (serial) batch', async (_name, o) => {
    const L = s.prior.len;
    const opts = { n: N, end: END, seed: 9, ...o };
    const parallel = (await prior.sample({ ...opts, yCond, tokens: new Int32Array(N * L) })).tokens;
    expect([...sampleOneThread(opts, new Int32Array(N * L))]).toEqual([...parallel]);
  });

  it('after a prefix prefilled in chunks (per-sample chunk tasks), batch == single runs == one thread', async () => {
    const L = s.prior.len, prefix = 260;
    const rand = rng(3);
    const tokens = new Int32Array(N * L).map(() => Math.floor(rand() * s.bins));
    const opts = { n: N, prefix, end: END, prefillChunk: 7, seed: 13, temperature: 0.95 };
    const batch = (await prior.sample({ ...opts, yCond, tokens })).tokens;
    for (let b = 0; b < N; b++) {
      const one = (await prior.sample({ ...opts, n: 1, sampleOffset: b, yCond: yRow(b), tokens: tokens.slice(b * L, (b + 1) * L) })).tokens;
      expect([...one], `sample ${b}`).toEqual([...batch.subarray(b * L, (b + 1) * L)]);
    }
    expect([...sampleOneThread(opts, tokens)]).toEqual([...batch]);
  });

  it('one sample at a long context (its heads as parallel tasks) equals the one-thread run', async () => {
    const L = s.prior.len, prefix = L - 80;
    const rand = rng(4);
    const tokens = new Int32Array(L).map(() => Math.floor(rand() * s.bins));
    const opts = { n: 1, prefix, seed: 17, temperature: 1 };
    const par = (await prior.sample({ ...opts, yCond: yRow(0), tokens })).tokens;
    expect([...sampleOneThread(opts, tokens, yRow(0))]).toEqual([...par]);
  });
});
