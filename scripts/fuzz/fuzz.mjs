#!/usr/bin/env node
/**
 * `npm run fuzz`: mutate the seed files of every reader family, run each mutant through the
 * calls a command would make (scripts/fuzz/targets.mjs) in a worker process, and count how
 * each ended:
 *   success  the file still made sense
 *   clean    a JukeboxError (what the CLI prints as `jukebox: error: ... [ERR_...]`)
 *   raw      any other exception (a TypeError, a RangeError, a WASM RuntimeError...)
 *   crash    the worker died (a native fault, a V8 abort)
 *   oom      the worker outgrew --max-rss, or V8 ran out of heap
 *   hang     the case took longer than --timeout
 * Every case that is not success/clean is saved under --out with what happened, so it can
 * be replayed (`node scripts/fuzz/fuzz.mjs --replay FILE --families FAMILY`). Exits 1 when
 * there is any such finding.
 *
 *   node scripts/fuzz/fuzz.mjs [--cases N] [--seconds S] [--seed K] [--families a,b]
 *                              [--timeout MS] [--max-rss MIB] [--out DIR] [--json]
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rng } from './mutate.mjs';
import { FAMILIES, REPO, seedsOf } from './targets.mjs';

const WORKER = fileURLToPath(new URL('./worker.mjs', import.meta.url));
export const BAD = ['raw', 'crash', 'oom', 'hang'];
const OUTCOMES = ['success', 'clean', ...BAD];

function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** A worker process and a way to run one case on it. */
class Worker {
  constructor(heapMiB) {
    this.stderr = '';
    this.child = fork(WORKER, [], { execArgv: [`--max-old-space-size=${heapMiB}`], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child.stderr.on('data', (d) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('message', (m) => (m?.ready ? resolve() : reject(new Error('worker did not start'))));
      this.child.once('exit', (code) => reject(new Error(`fuzz worker exited at start (${code}): ${this.stderr}`)));
    });
  }

  /** Resolves with the case's outcome; the worker is unusable after crash/oom/hang. */
  run(id, family, path, timeoutMs, maxRssMiB) {
    return new Promise((resolve) => {
      const child = this.child;
      let done = false;
      const finish = (r) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(watch);
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(r);
      };
      const onMessage = (m) => m.id === id && finish(m);
      const onExit = (code, signal) => {
        const oom = /heap out of memory|Allocation failed|ENOMEM|std::bad_alloc/i.test(this.stderr);
        finish({ outcome: oom ? 'oom' : 'crash', message: `worker exited (code ${code}, signal ${signal}): ${this.stderr.trim().split('\n').slice(-8).join(' | ')}` });
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish({ outcome: 'hang', message: `no answer within ${timeoutMs} ms` });
      }, timeoutMs);
      const watch = setInterval(() => {
        const rss = rssMiB(child.pid);
        if (rss > maxRssMiB) {
          child.kill('SIGKILL');
          finish({ outcome: 'oom', message: `worker grew to ${rss.toFixed(0)} MiB (limit ${maxRssMiB})` });
        }
      }, 100);
      child.on('message', onMessage);
      child.on('exit', onExit);
      this.stderr = '';
      child.send({ id, family, path });
    });
  }

  kill() {
    this.child.kill('SIGKILL');
  }
}

/**
 * Run a fuzz pass; returns the counts per family and outcome, and the findings. Stops at
 * `cases` cases or after `seconds`, whichever comes first.
 */
export async function runFuzz(opts = {}) {
  const families = opts.families ?? Object.keys(FAMILIES);
  for (const f of families) if (!FAMILIES[f]) throw new Error(`unknown family ${f}; known: ${Object.keys(FAMILIES).join(', ')}`);
  const cases = opts.cases ?? Infinity;
  const deadline = Date.now() + (opts.seconds ?? Infinity) * 1000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxRssMiB = opts.maxRssMiB ?? 2048;
  const r = rng(opts.seed ?? 1);
  const work = mkdtempSync(join(tmpdir(), 'jukebox-fuzz-'));
  const seeds = Object.fromEntries(families.map((f) => [f, seedsOf(f).map((s) => (typeof s === 'function' ? s() : readFileSync(s)))]));
  const counts = Object.fromEntries(families.map((f) => [f, Object.fromEntries(OUTCOMES.map((o) => [o, 0]))]));
  const codes = {};
  const findings = [];
  let worker = new Worker(opts.heapMiB ?? 1024);
  await worker.ready;
  let n = 0;
  try {
    for (; n < cases && Date.now() < deadline; n++) {
      const family = families[n % families.length];
      if (seeds[family].length === 0) continue;
      let bytes = opts.replay ? readFileSync(opts.replay) : r.pick(seeds[family]);
      if (!opts.replay) {
        const edits = 1 + (r() < 0.3 ? r.int(3) : 0);
        for (let k = 0; k < edits; k++) bytes = FAMILIES[family].mutate(bytes, r);
      }
      const path = join(work, `case-${n}${FAMILIES[family].ext}`);
      writeFileSync(path, bytes);
      const t0 = Date.now();
      const res = await worker.run(n, family, path, timeoutMs, maxRssMiB);
      const ms = Date.now() - t0;
      counts[family][res.outcome]++;
      if (res.outcome === 'clean') codes[res.code] = (codes[res.code] ?? 0) + 1;
      if (BAD.includes(res.outcome)) {
        const finding = { case: n, family, outcome: res.outcome, ms, name: res.name, message: res.message, stack: res.stack };
        findings.push(finding);
        if (opts.out) {
          mkdirSync(opts.out, { recursive: true });
          const saved = join(opts.out, `${family}-${n}-${res.outcome}${FAMILIES[family].ext}`);
          copyFileSync(path, saved);
          writeFileSync(`${saved}.json`, JSON.stringify(finding, null, 2));
          finding.saved = saved;
        }
        opts.onFinding?.(finding);
        if (res.outcome !== 'raw') {
          worker.kill();
          worker = new Worker(opts.heapMiB ?? 1024);
          await worker.ready;
        }
      }
      rmSync(path, { force: true });
      if (opts.replay) break;
    }
  } finally {
    worker.kill();
    rmSync(work, { recursive: true, force: true });
  }
  return { cases: n, counts, codes, findings };
}

export function formatCounts({ cases, counts, codes }) {
  const lines = [`${cases} cases`];
  const w = Math.max(...Object.keys(counts).map((f) => f.length));
  lines.push(`${'family'.padEnd(w)}  ${OUTCOMES.map((o) => o.padStart(7)).join(' ')}`);
  for (const [f, c] of Object.entries(counts)) lines.push(`${f.padEnd(w)}  ${OUTCOMES.map((o) => String(c[o]).padStart(7)).join(' ')}`);
  const total = Object.fromEntries(OUTCOMES.map((o) => [o, Object.values(counts).reduce((s, c) => s + c[o], 0)]));
  lines.push(`${'total'.padEnd(w)}  ${OUTCOMES.map((o) => String(total[o]).padStart(7)).join(' ')}`);
  lines.push(`clean errors by code: ${Object.entries(codes).sort((a, b) => b[1] - a[1]).map(([c, k]) => `${c} ${k}`).join(', ') || 'none'}`);
  return lines.join('\n');
}

function parseArgs(argv) {
  const o = { out: join(REPO, 'fuzz-out') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => argv[++i];
    if (a === '--cases') o.cases = Number(v());
    else if (a === '--seconds') o.seconds = Number(v());
    else if (a === '--seed') o.seed = Number(v());
    else if (a === '--families') o.families = v().split(',');
    else if (a === '--timeout') o.timeoutMs = Number(v());
    else if (a === '--max-rss') o.maxRssMiB = Number(v());
    else if (a === '--out') o.out = v();
    else if (a === '--replay') o.replay = v();
    else if (a === '--json') o.json = true;
    else if (a === '--help' || a === '-h') {
      console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0].replace(/^#!.*\n\/\*\*\n/, '').replace(/^ \* ?/gm, ''));
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (o.cases === undefined && o.seconds === undefined) o.cases = 2000;
  // A fresh seed each run by hand, printed so any finding can be replayed with --seed.
  if (o.seed === undefined) o.seed = Date.now() % 2147483647;
  return o;
}

if (process.argv[1] && basename(process.argv[1]) === 'fuzz.mjs') {
  const o = parseArgs(process.argv.slice(2));
  console.log(`fuzz: seed ${o.seed}, ${o.cases ?? 'unlimited'} cases, ${o.seconds ?? 'no'} time limit${o.seconds ? ' s' : ''}`);
  const res = await runFuzz({
    ...o,
    onFinding: (f) => process.stderr.write(`${f.outcome}: ${f.family} case ${f.case} (${f.ms} ms): ${f.name ? `${f.name}: ` : ''}${f.message}\n`),
  });
  console.log(o.json ? JSON.stringify(res, null, 2) : formatCounts(res));
  if (res.findings.length > 0) {
    console.log(`${res.findings.length} finding(s)${o.out ? ` saved under ${o.out}` : ''}`);
    process.exit(1);
  }
}
