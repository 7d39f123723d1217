#!/usr/bin/env node
/**
 * `npm run gpu:check [-- options]`: everything worth checking when a GPU is lent, in one
 * command that fits a 15-minute loan twice (default time budget 450 s, under 8 minutes on an
 * H100/H200 with the default settings): the device (nvidia-smi), the build (addon if missing,
 * TypeScript, `build:cuda`), `jukebox doctor --json`, the kernel parity program (full
 * shapes), `bench:cuda`, then `jukebox generate --backend cuda` against `--backend cpu` with
 * the same seed on the default model and on a random-weight 5b_lyrics-shaped model (the
 * official widths and attention layout; full depth by default; the CPU run kept to a few
 * tokens), comparing the codes files the runs write (codes_level_L.npz).
 *
 * Every step has its own time limit (and the whole run a budget); a failed or timed-out step
 * is recorded with its reason and the run goes on. One report: OUT/report.json and
 * OUT/report.md, each step's full output in OUT/logs/<step>.log. Exit status 0 when every
 * step that ran passed, 1 otherwise, 2 for bad options.
 *
 * --emulated: no GPU needed: the emulation build (build/cuda-emu, `npm run build:cuda-emu`)
 * through JUKEBOX_CUDA_LIB, no nvcc build and no benchmark (timing the emulator means
 * nothing); with small settings this is what test/gpu-check.test.ts runs.
 *
 * Options: --out DIR (gpu-check-report/), --seed N (7), --seconds S (3: default-model runs),
 * --big-layers N (79, 5b_lyrics' depth), --big-prime-layers N (18), --big-seconds S (1: the
 * timed CUDA run on the big model), --big-compare-seconds S (0.02 = 7 top-level tokens: the
 * CUDA/CPU pair), --parity-args "ARGS", --budget S (450), --timeout step=S[,step=S],
 * --only step,... / --skip step,..., --work DIR (temporary files; default in os.tmpdir()),
 * --keep (keep the work folder).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// ---- options

function parseArgs(argv) {
  const o = {
    out: 'gpu-check-report', emulated: false, seed: 7, seconds: 3, bigLayers: 79, bigPrimeLayers: 18, bigSeconds: 1,
    bigCompareSeconds: 0.02, parityArgs: [], budget: 450, timeouts: {}, only: null, skip: [], work: null, keep: false, writeBigModel: null,
  };
  const num = (name, v) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) usage(`${name} needs a non-negative number, got ${JSON.stringify(v)}`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) [a, v] = [a.slice(0, eq), a.slice(eq + 1)];
    const val = () => v ?? argv[++i] ?? usage(`${a} needs a value`);
    switch (a) {
      case '--out': o.out = val(); break;
      case '--emulated': o.emulated = true; break;
      case '--seed': o.seed = Math.floor(num(a, val())); break;
      case '--seconds': o.seconds = num(a, val()); break;
      case '--big-layers': o.bigLayers = Math.max(1, Math.floor(num(a, val()))); break;
      case '--big-prime-layers': o.bigPrimeLayers = Math.max(1, Math.floor(num(a, val()))); break;
      case '--big-seconds': o.bigSeconds = num(a, val()); break;
      case '--big-compare-seconds': o.bigCompareSeconds = num(a, val()); break;
      case '--parity-args': o.parityArgs = val().split(/\s+/).filter(Boolean); break;
      case '--budget': o.budget = num(a, val()); break;
      case '--timeout':
        for (const kv of val().split(',')) {
          const [k, s] = kv.split('=');
          o.timeouts[k] = num(`--timeout ${k}`, s);
        }
        break;
      case '--only': o.only = val().split(','); break;
      case '--skip': o.skip = val().split(','); break;
      case '--work': o.work = val(); break;
      case '--keep': o.keep = true; break;
      case '--write-big-model': o.writeBigModel = val(); break; // internal: the big-model step's child
      case '--help': case '-h': console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]); process.exit(0); // eslint-disable-line no-fallthrough
      default: usage(`unknown option ${a}`);
    }
  }
  return o;
}

function usage(why) {
  console.error(`gpu-check: ${why} (see the top of scripts/gpu-check.mjs, or --help)`);
  process.exit(2);
}

// ---- the random-weight 5b_lyrics-shaped model (as bench/prior-bench.mjs makes its priors)

/**
 * Random fp16 bits of magnitude ~0.01 (exponent 0x20, the sign from the generator) for
 * matrices, fp32 ones for LayerNorm weights and zeros for vectors: activations stay finite
 * through any depth, and the same seed gives the same file. Streamed tensor by tensor, so
 * the 5B-parameter file (~10 GB) never sits in memory.
 */
function randomTensor(name, shape, seed) {
  const n = shape.reduce((a, b) => a * b, 1);
  const vector = shape.length === 1 || name.endsWith('start_token');
  if (vector) {
    const f = new Float32Array(n).fill(/ln(_\d)?\.weight$/.test(name) ? 1 : 0);
    return { name, dtype: 'F32', shape, nbytes: f.byteLength, source: new Uint8Array(f.buffer) };
  }
  const codebook = name.endsWith('.k');
  if (codebook) {
    // a VQ-VAE codebook: distinct codes of unit scale, fp32 as convert writes them
    const f = new Float32Array(n);
    let s = seed >>> 0;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      f[i] = (s / 2 ** 32) * 2 - 1;
    }
    return { name, dtype: 'F32', shape, nbytes: f.byteLength, source: new Uint8Array(f.buffer) };
  }
  return {
    name, dtype: 'F16', shape, nbytes: n * 2,
    // Slices of one random pool at offsets that depend on the tensor and the chunk: a
    // generator per element would take minutes for 5.6e9 weights; this is disk speed.
    source: async function* () {
      const p = pool();
      let chunk = 0;
      for (let off = 0; off < n; off += POOL_CHUNK, chunk++) {
        const len = Math.min(POOL_CHUNK, n - off);
        const start = ((Math.imul(seed, 40503) + Math.imul(chunk, 2654435761)) >>> 0) % (p.length - POOL_CHUNK);
        yield new Uint8Array(p.buffer, start * 2, len * 2);
      }
    },
  };
}

const POOL_CHUNK = 1 << 22;
let poolBits;
function pool() {
  if (poolBits) return poolBits;
  poolBits = new Uint16Array(POOL_CHUNK * 8 + 12345);
  let s = 12345;
  for (let i = 0; i < poolBits.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    poolBits[i] = 0x2000 | (s >>> 22) | ((s & 1) << 15);
  }
  return poolBits;
}

async function writeBigModel(dir, o) {
  const { preset } = await import('../dist/hparams/presets.js');
  const { priorStructure } = await import('../dist/prior/structure.js');
  const { priorKeys } = await import('../dist/prior/layout.js');
  const { vqvaeHparams } = await import('../dist/vqvae/hparams.js');
  const { vqvaeLayout } = await import('../dist/vqvae/layout.js');
  const { writeSafetensors } = await import('../dist/checkpoint/index.js');
  const { FORMAT_TAG, META } = await import('../dist/model-file.js');
  mkdirSync(dir, { recursive: true });
  const vqH = preset('vqvae');
  const vq = vqvaeHparams(vqH, 'vqvae');
  const full = preset('prior_5b_lyrics');
  const h = { ...full, prior_depth: o.bigLayers, prime_depth: o.bigPrimeLayers };
  // the official alignment layer (68) exists only at full depth
  if (typeof full.alignment_layer === 'number' && full.alignment_layer >= o.bigLayers) h.alignment_layer = null;
  const t0 = Date.now();
  let seed = 1;
  const vqKeys = [...vqvaeLayout(vq).keys];
  await writeSafetensors(join(dir, 'vqvae.safetensors'), vqKeys.map(([k, shape]) => randomTensor(k, shape, seed++)), {
    [META.format]: FORMAT_TAG, [META.kind]: 'vqvae', [META.hparams]: JSON.stringify(vqH),
  });
  const s = priorStructure(h, vq, 'prior_5b_lyrics (random)');
  const keys = [...priorKeys(s)];
  await writeSafetensors(join(dir, 'top.safetensors'), keys.map(([k, shape]) => randomTensor(k, shape, 1000 + seed++)), {
    [META.format]: FORMAT_TAG, [META.kind]: 'prior', [META.hparams]: JSON.stringify(h), [META.vqvaeHparams]: JSON.stringify(vqH),
  });
  const params = keys.reduce((a, [, shape]) => a + shape.reduce((x, y) => x * y, 1), 0);
  const info = { preset: 'prior_5b_lyrics', layers: o.bigLayers, primeLayers: o.bigPrimeLayers, width: h.prior_width, nCtx: h.n_ctx, params, seconds: (Date.now() - t0) / 1000 };
  writeFileSync(join(dir, 'model-info.json'), JSON.stringify(info));
  console.log(JSON.stringify(info));
}

// ---- running steps

/** Runs a command in its own process group; kills the group when `limit` seconds pass. */
function run(cmd, args, { env = process.env, cwd = root, limit, log }) {
  return new Promise((done) => {
    const t0 = Date.now();
    const out = createWriteStream(log, { flags: 'a' });
    out.write(`$ ${[cmd, ...args].join(' ')}\n`);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let child;
    try {
      child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      out.end(`spawn failed: ${e.message}\n`);
      done({ code: null, error: e.message, stdout, stderr, seconds: 0, timedOut });
      return;
    }
    const cap = (s, d) => (s.length > 4 << 20 ? s : s + d);
    child.stdout.on('data', (d) => { stdout = cap(stdout, d.toString()); out.write(d); });
    child.stderr.on('data', (d) => { stderr = cap(stderr, d.toString()); out.write(d); });
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, Math.max(1, limit) * 1000);
    // 'error' (e.g. not found) may or may not be followed by 'close': the first one counts
    let finished = false;
    const finish = (text, result) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      out.end(text);
      done(result);
    };
    child.on('error', (e) => {
      finish(`\nerror: ${e.message}\n`, { code: null, error: e.code === 'ENOENT' ? `${cmd} not found` : e.message, stdout, stderr, seconds: (Date.now() - t0) / 1000, timedOut });
    });
    child.on('close', (code, signal) => {
      const seconds = (Date.now() - t0) / 1000;
      finish(`\n[exit ${code ?? signal} after ${seconds.toFixed(1)} s${timedOut ? `, killed at the ${limit} s limit` : ''}]\n`, { code, signal, stdout, stderr, seconds, timedOut });
    });
  });
}

/** The one line that says why a command failed: the CLI's "jukebox: error:", or the last line of stderr. */
function why(r, limit) {
  if (r.timedOut) return `timed out after ${limit} s (the step's limit)`;
  if (r.error) return r.error;
  const lines = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const err = lines.find((l) => /^jukebox: error:/.test(l)) ?? lines.filter((l) => /error|fail|not found|cannot/i.test(l)).at(-1) ?? lines.at(-1);
  return `exit ${r.code ?? r.signal}${err ? `: ${err.length > 600 ? `${err.slice(0, 600)}...` : err}` : ''}`;
}

function compareCodes(readNpz, a, b) {
  const levels = [];
  for (let l = 0; l < 3; l++) {
    const pa = join(a, `codes_level_${l}.npz`);
    const pb = join(b, `codes_level_${l}.npz`);
    if (!existsSync(pa) && !existsSync(pb)) continue;
    if (!existsSync(pa) || !existsSync(pb)) {
      levels.push({ level: l, equal: false, why: `only ${existsSync(pa) ? a : b} has codes_level_${l}.npz` });
      continue;
    }
    const x = readNpz(pa)[`level_${l}`];
    const y = readNpz(pb)[`level_${l}`];
    if (JSON.stringify(x.shape) !== JSON.stringify(y.shape)) {
      levels.push({ level: l, equal: false, why: `shapes differ: ${JSON.stringify(x.shape)} vs ${JSON.stringify(y.shape)}` });
      continue;
    }
    let differ = 0;
    let first = -1;
    for (let i = 0; i < x.data.length; i++) {
      if (x.data[i] !== y.data[i]) {
        differ++;
        if (first < 0) first = i;
      }
    }
    levels.push({ level: l, shape: x.shape, equal: differ === 0, differing: differ, ...(first >= 0 ? { firstDifference: first } : {}) });
  }
  return levels;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.writeBigModel) return writeBigModel(o.writeBigModel, o);

  const started = Date.now();
  const outDir = resolve(o.out);
  const logs = join(outDir, 'logs');
  rmSync(logs, { recursive: true, force: true });
  mkdirSync(logs, { recursive: true });
  const work = o.work ? resolve(o.work) : mkdtempSync(join(tmpdir(), 'jukebox-gpu-check-'));
  mkdirSync(work, { recursive: true });
  const cudaLib = o.emulated ? join(root, 'build', 'cuda-emu', 'libjukebox-cuda.so') : join(root, 'build', 'cuda', 'libjukebox-cuda.so');
  const cudaDir = dirname(cudaLib);
  const env = { ...process.env, JUKEBOX_CUDA_LIB: cudaLib, CI: '1' };
  const cli = (args) => [process.execPath, [join(root, 'bin', 'jukebox.js'), ...args]];
  const jobs = String(Math.max(1, cpus().length));

  const report = {
    format: 'jukebox-gpu-check/1',
    startedAt: new Date(started).toISOString(),
    mode: o.emulated ? 'emulated' : 'gpu',
    settings: { seed: o.seed, seconds: o.seconds, bigLayers: o.bigLayers, bigPrimeLayers: o.bigPrimeLayers, bigSeconds: o.bigSeconds, bigCompareSeconds: o.bigCompareSeconds, budget: o.budget, parityArgs: o.parityArgs },
    cudaLibrary: cudaLib,
    device: null,
    steps: [],
  };
  const results = {};
  const remaining = () => o.budget - (Date.now() - started) / 1000;

  /**
   * One step: skipped when not selected, when a step it needs did not pass, or when the
   * budget is spent; else `fn(limit, log)` returns { status, reason?, data? } (or throws).
   */
  async function step(name, limit, fn, { needs = [], skipWhy } = {}) {
    const rec = { name, status: 'skipped', seconds: 0, limit: o.timeouts[name] ?? limit, log: `logs/${name}.log` };
    report.steps.push(rec);
    results[name] = rec;
    const unmet = needs.filter((n) => results[n]?.status !== 'ok');
    if ((o.only && !o.only.includes(name)) || o.skip.includes(name)) rec.reason = 'not selected (--only/--skip)';
    else if (skipWhy) rec.reason = skipWhy;
    else if (unmet.length) rec.reason = `needs ${unmet.map((n) => `${n} (${results[n]?.status ?? 'not run'})`).join(', ')}`;
    else if (remaining() < 5) rec.reason = `the time budget (${o.budget} s) is spent`;
    else {
      rec.limit = Math.max(1, Math.min(rec.limit, Math.floor(remaining())));
      const log = join(logs, `${name}.log`);
      writeFileSync(log, `# ${name} (limit ${rec.limit} s)\n`);
      const t0 = Date.now();
      try {
        Object.assign(rec, await fn(rec.limit, log));
      } catch (e) {
        rec.status = 'failed';
        rec.reason = `the check itself failed: ${e.message}`;
      }
      rec.seconds = Number(((Date.now() - t0) / 1000).toFixed(2));
    }
    console.log(`gpu-check: ${name.padEnd(16)} ${rec.status.padEnd(7)} ${rec.seconds.toFixed(1).padStart(6)} s${rec.reason ? `  ${rec.reason}` : ''}`);
    return rec;
  }

  const cmdStep = async (limit, log, cmd, args, opts = {}) => {
    const r = await run(cmd, args, { env: opts.env ?? env, limit, log });
    return { r, ok: r.code === 0 && !r.timedOut, reason: r.code === 0 && !r.timedOut ? undefined : why(r, limit) };
  };

  // 1. the device
  await step('device', 30, async (limit, log) => {
    const q = await cmdStep(limit, log, 'nvidia-smi', ['--query-gpu=index,name,driver_version,memory.total,compute_cap', '--format=csv,noheader,nounits']);
    if (!q.ok) return { status: 'failed', reason: `nvidia-smi: ${q.reason}` };
    const devices = q.r.stdout.trim().split('\n').filter(Boolean).map((l) => {
      const [index, name, driver, memMiB, cc] = l.split(',').map((x) => x.trim());
      return { index: Number(index), name, driver, memoryMiB: Number(memMiB), computeCapability: cc };
    });
    const plain = await run('nvidia-smi', [], { limit: 15, log });
    const cudaVersion = /CUDA Version:\s*([\d.]+)/.exec(plain.stdout)?.[1];
    report.device = { ...devices[0], cudaVersion, all: devices };
    return { status: devices.length ? 'ok' : 'failed', reason: devices.length ? undefined : 'nvidia-smi lists no GPU', data: { devices, cudaVersion } };
  });

  // 2. the build: the addon when missing, TypeScript, the CUDA project (library, parity, bench)
  await step('build', 300, async (limit, log) => {
    const t0 = Date.now();
    const left = () => Math.max(1, limit - (Date.now() - t0) / 1000);
    const nodedir = process.env.npm_config_nodedir ?? (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
    const benv = { ...process.env, ...(nodedir ? { npm_config_nodedir: nodedir } : {}) };
    const done = [];
    if (!existsSync(join(root, 'build', 'Release', 'jukebox.node'))) {
      // node-gyp rebuild clears build/, so it goes first
      const a = await cmdStep(left(), log, 'npm', ['run', 'build:native', '--silent'], { env: benv });
      if (!a.ok) return { status: 'failed', reason: `the addon (npm run build:native): ${a.reason}` };
      done.push('addon');
    }
    const ts = await cmdStep(left(), log, process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { env: benv });
    if (!ts.ok) return { status: 'failed', reason: `TypeScript: ${ts.reason}` };
    done.push('TypeScript');
    const c = await cmdStep(left(), log, process.execPath, [join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js'), 'compile', '-d', 'cuda', '-O', 'build/cuda', '-p', jobs, '--log-level', 'warn'], { env: benv });
    if (!c.ok) return { status: 'failed', reason: `npm run build:cuda: ${c.reason}` };
    done.push('build/cuda');
    return { status: existsSync(cudaLib) ? 'ok' : 'failed', reason: existsSync(cudaLib) ? undefined : `the build wrote no ${cudaLib}`, data: { built: done } };
  }, { skipWhy: o.emulated ? 'emulated: uses the emulation build (build/cuda-emu), nothing is built with nvcc' : undefined });

  if (o.emulated && !existsSync(cudaLib)) console.log(`gpu-check: ${cudaLib} is missing: run npm run build:cuda-emu (the CUDA steps below will say so)`);

  // 3. doctor: what the addon makes of the library and the device
  await step('doctor', 60, async (limit, log) => {
    const [cmd, args] = cli(['doctor', '--json']);
    const d = await cmdStep(limit, log, cmd, args);
    if (!d.ok) return { status: 'failed', reason: d.reason };
    const j = JSON.parse(d.r.stdout);
    const c = j.cuda ?? {};
    const data = {
      library: c.library, libraryLoaded: c.libraryLoaded, emulated: c.emulated, buildInfo: c.buildInfo, runtimeVersion: c.runtimeVersion, driverVersion: c.driverVersion,
      devices: c.devices, reason: c.reason, backends: j.backends, cpu: { model: j.cpu.model, isa: j.cpu.isa, threads: j.cpu.threads },
    };
    if (!c.libraryLoaded) return { status: 'failed', reason: `the CUDA library did not load: ${c.reason}`, data };
    return { status: 'ok', data };
  });

  // 4. the parity program: every kernel against its CPU reference
  await step('parity', 180, async (limit, log) => {
    const exe = join(cudaDir, 'jukebox-cuda-parity');
    if (!existsSync(exe)) return { status: 'failed', reason: `${exe} is missing (${o.emulated ? 'npm run build:cuda-emu' : 'the build step'})` };
    const p = await cmdStep(limit, log, exe, o.parityArgs);
    const lines = p.r.stdout.split('\n');
    const ok = lines.filter((l) => l.startsWith('ok ')).length;
    const failedCases = lines.filter((l) => l.startsWith('FAIL')).map((l) => l.replace(/\s+/g, ' ').trim());
    const summary = lines.find((l) => /^parity (ok|FAILED)/.test(l)) ?? lines.filter(Boolean).at(-1) ?? '';
    const data = { casesOk: ok, casesFailed: failedCases.length, failed: failedCases.slice(0, 50), summary };
    if (!p.ok) return { status: 'failed', reason: failedCases.length ? `${failedCases.length} case(s) outside tolerance: ${failedCases.slice(0, 3).join('; ')}` : p.reason, data };
    return { status: 'ok', data };
  });

  // 5. bench:cuda: decode-step speed of full-size stacks, the VQ-VAE decoder, the projection
  await step('bench', 150, async (limit, log) => {
    const b = await cmdStep(limit, log, process.execPath, [join(root, 'bench', 'cuda-bench.mjs')]);
    const lines = b.r.stdout.split('\n').filter(Boolean);
    const figures = lines.filter((l) => /ms\/step|GB\/s|real time|projected|device:/.test(l));
    if (!b.ok) return { status: 'failed', reason: b.reason, data: { figures } };
    if (/nothing to measure here/.test(b.r.stdout)) return { status: 'failed', reason: lines[0], data: { figures } };
    return { status: 'ok', data: { figures } };
  }, { skipWhy: o.emulated ? 'emulated: timing the emulator means nothing' : undefined });

  // 6-8. the default model: CUDA against the CPU, same seed
  const genStep = (name, dir, extra, limit) =>
    step(name, limit, async (lim, log) => {
      rmSync(dir, { recursive: true, force: true });
      const [cmd, args] = cli(['generate', ...extra, '--seed', String(o.seed), '-o', dir]);
      const g = await cmdStep(lim, log, cmd, args);
      let runJson;
      try {
        runJson = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
      } catch {
        // no run.json: the run failed before writing it
      }
      const data = { wallSeconds: Number(g.r.seconds.toFixed(2)), runBackend: runJson?.backend ?? null, sampleLength: runJson?.sampleLength, dir };
      if (!g.ok) return { status: 'failed', reason: g.reason, data };
      const wantCuda = extra.includes('cuda');
      if (wantCuda && runJson?.backend !== 'cuda') return { status: 'failed', reason: `run.json says backend ${JSON.stringify(runJson?.backend)}, not "cuda"`, data };
      return { status: 'ok', data };
    });
  const compareStep = (name, a, b) =>
    step(name, 30, async () => {
      const { readNpz } = await import('../dist/npz.js');
      const levels = compareCodes(readNpz, results[a].data.dir, results[b].data.dir);
      if (!levels.length) return { status: 'failed', reason: 'no codes files to compare' };
      const equal = levels.every((l) => l.equal);
      const summary = levels.map((l) => `level ${l.level}: ${l.equal ? 'equal' : l.why ?? `${l.differing} of ${l.shape.reduce((x, y) => x * y, 1)} codes differ (first at ${l.firstDifference})`}`).join('; ');
      return { status: equal ? 'ok' : 'failed', reason: equal ? undefined : `the CUDA codes differ from the CPU's with seed ${o.seed}: ${summary}`, data: { equal, levels, summary } };
    }, { needs: [a, b] });

  const seconds = String(o.seconds);
  await genStep('generate-cuda', join(work, 'default-cuda'), ['--backend', 'cuda', '--seconds', seconds], 120);
  await genStep('generate-cpu', join(work, 'default-cpu'), ['--backend', 'cpu', '--seconds', seconds], 120);
  await compareStep('compare-default', 'generate-cuda', 'generate-cpu');

  // 9-13. the 5b_lyrics-shaped random model (top level only): a timed CUDA run, then a
  // CUDA/CPU pair of a few tokens (the CPU reads every weight per token: ~10 GB at full depth)
  const bigDir = join(work, 'big-model');
  await step('big-model', 180, async (limit, log) => {
    const w = await cmdStep(limit, log, process.execPath, [fileURLToPath(import.meta.url), '--write-big-model', bigDir, '--big-layers', String(o.bigLayers), '--big-prime-layers', String(o.bigPrimeLayers)]);
    if (!w.ok) return { status: 'failed', reason: w.reason };
    return { status: 'ok', data: JSON.parse(readFileSync(join(bigDir, 'model-info.json'), 'utf8')) };
  });
  const big = ['--vqvae', join(bigDir, 'vqvae.safetensors'), '--top', join(bigDir, 'top.safetensors'), '--levels', '2', '--lyrics', 'Hello from the random model, a line of lyrics for the encoder'];
  const bigNeeds = results['big-model'].status === 'ok' ? undefined : `needs big-model (${results['big-model'].status})`;
  const bigGen = async (name, dir, extra, limit) => {
    if (bigNeeds) return step(name, limit, async () => ({}), { skipWhy: bigNeeds });
    return genStep(name, dir, [...big, ...extra], limit);
  };
  await bigGen('big-cuda-timed', join(work, 'big-cuda-timed'), ['--backend', 'cuda', '--seconds', String(o.bigSeconds)], 150);
  if (results['big-cuda-timed'].status === 'ok') {
    const d = results['big-cuda-timed'].data;
    d.tokens = Math.ceil((d.sampleLength ?? 0) / 128);
    d.tokensPerSecond = Number((d.tokens / d.wallSeconds).toFixed(1));
  }
  await bigGen('big-cuda', join(work, 'big-cuda'), ['--backend', 'cuda', '--seconds', String(o.bigCompareSeconds)], 90);
  await bigGen('big-cpu', join(work, 'big-cpu'), ['--backend', 'cpu', '--seconds', String(o.bigCompareSeconds)], 150);
  await compareStep('compare-big', 'big-cuda', 'big-cpu');

  // ---- the report
  report.finishedAt = new Date().toISOString();
  report.totalSeconds = Number(((Date.now() - started) / 1000).toFixed(1));
  report.passed = report.steps.filter((s) => s.status === 'ok').map((s) => s.name);
  report.failed = report.steps.filter((s) => s.status === 'failed').map((s) => s.name);
  report.skipped = report.steps.filter((s) => s.status === 'skipped').map((s) => s.name);
  writeFileSync(join(outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(outDir, 'report.md'), markdown(report));
  if (!o.keep && !o.work) rmSync(work, { recursive: true, force: true });
  console.log(`gpu-check: ${report.passed.length} passed, ${report.failed.length} failed, ${report.skipped.length} skipped in ${report.totalSeconds} s; report: ${join(outDir, 'report.md')} (and report.json, logs/)`);
  process.exitCode = report.failed.length ? 1 : 0;
}

function markdown(r) {
  const get = (n) => r.steps.find((s) => s.name === n);
  const cell = (s) => String(s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const L = [];
  L.push(`# GPU check (${r.mode})`, '');
  L.push(`${r.startedAt} to ${r.finishedAt}: ${r.totalSeconds} s (budget ${r.settings.budget} s). ${r.passed.length} passed, ${r.failed.length} failed, ${r.skipped.length} skipped.`, '');
  const d = r.device;
  L.push(d ? `Device: **${d.name}** (compute capability ${d.computeCapability}, ${(d.memoryMiB / 1024).toFixed(0)} GiB), driver ${d.driver}${d.cudaVersion ? ` (CUDA ${d.cudaVersion})` : ''}.` : `Device: none found (${cell(get('device')?.reason)}).`);
  const doc = get('doctor')?.data;
  if (doc) L.push('', `CUDA library: ${doc.library} (${doc.libraryLoaded ? 'loaded' : 'not loaded'}${doc.emulated ? ', emulated on the CPU' : ''}): ${doc.buildInfo ?? ''}; backend cuda: ${doc.reason ?? 'available'}.`);
  L.push('', '| step | status | seconds (limit) | result |', '|---|---|---|---|');
  for (const s of r.steps) {
    const res = s.reason ?? (s.data?.summary ?? (s.data?.wallSeconds !== undefined ? `${s.data.wallSeconds} s wall, run.json backend ${s.data.runBackend}` : ''));
    L.push(`| ${s.name} | ${s.status === 'ok' ? 'ok' : s.status === 'failed' ? '**FAILED**' : 'skipped'} | ${s.seconds} (${s.limit}) | ${cell(res)} |`);
  }
  const parity = get('parity')?.data;
  if (parity) {
    L.push('', '## Parity', '', `${parity.casesOk} cases within tolerance, ${parity.casesFailed} outside. ${cell(parity.summary)}`);
    for (const f of parity.failed) L.push(`- ${f}`);
  }
  const bench = get('bench')?.data;
  if (bench?.figures?.length) L.push('', '## bench:cuda', '', '```', ...bench.figures, '```');
  L.push('', '## Generation (same seed on both backends)', '', '| model | step | status | seconds of audio | wall s | run.json backend | codes equal to the CPU\'s |', '|---|---|---|---|---|---|---|');
  const row = (model, name, secs, cmp) => {
    const s = get(name);
    const c = cmp ? get(cmp) : undefined;
    const eq = !cmp ? '' : c?.status === 'ok' ? 'yes' : c?.status === 'failed' ? `no: ${c.data?.summary ?? c.reason}` : `not compared (${c?.reason ?? 'n/a'})`;
    L.push(`| ${model} | ${name} | ${s?.status ?? 'not run'} | ${secs} | ${s?.data?.wallSeconds ?? ''} | ${s?.data?.runBackend ?? ''} | ${cell(eq)} |`);
  };
  row('default', 'generate-cuda', r.settings.seconds, 'compare-default');
  row('default', 'generate-cpu', r.settings.seconds);
  const bm = get('big-model')?.data;
  const bigName = bm ? `5b_lyrics-shaped random (${bm.layers} layers, ${(bm.params / 1e9).toFixed(2)} B params)` : '5b_lyrics-shaped random';
  row(bigName, 'big-cuda-timed', r.settings.bigSeconds);
  row(bigName, 'big-cuda', r.settings.bigCompareSeconds, 'compare-big');
  row(bigName, 'big-cpu', r.settings.bigCompareSeconds);
  const timed = get('big-cuda-timed')?.data;
  if (timed?.tokensPerSecond) L.push('', `Big model on CUDA: ${timed.tokens} top-level tokens in ${timed.wallSeconds} s wall (${timed.tokensPerSecond} tokens/s, load included).`);
  L.push('', 'Each step\'s output: logs/<step>.log. Machine-readable: report.json.', '');
  return L.join('\n');
}

main().catch((e) => {
  console.error(`gpu-check: ${e.stack ?? e}`);
  process.exit(1);
});
