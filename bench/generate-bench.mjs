// Part of `npm run bench` (alone: `npm run bench:generate`): the
// README's main command, `jukebox generate --seconds 10 -o out/` with the shipped default
// model (all three levels sampled, then decoded), timed end to end.
//
// 1. In this process through the library, as the CLI runs it (codes written after every
//    window, WAVs at the end): wall seconds, the real-time factor, and from
//    process.resourceUsage() the CPU user/system time, the system time's share, and the
//    voluntary / involuntary context switches. The thread-pool overhead shows in those
//    counts (a futex sleep or wake per op used to be a context switch each).
// 2. The CLI itself as a child process (node start-up and module loading included), with
//    the default threads and with JUKEBOX_THREADS=1.
//
// BENCH_GENERATE_SECONDS (default 10) sets the audio length, BENCH_GENERATE_REPS (default
// 3) the in-process repetitions (best and median printed). Seed 1 throughout, so every run
// does the same work. Not a timed test: the figures are for the record (BENCHMARKS.md).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadJukebox } from '../dist/index.js';
import { writeRunAudio } from '../dist/generate/run-files.js';
import { native } from '../dist/native.js';

const SECONDS = Number(process.env.BENCH_GENERATE_SECONDS ?? 10);
const REPS = Math.max(1, Number(process.env.BENCH_GENERATE_REPS ?? 3));
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'bin', 'jukebox.js');
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-generate-bench-'));
const fmt = (x, d = 2) => x.toFixed(d);

const info = native().kernels.info();
console.log(
  `\njukebox-node generate benchmark — default model, ${SECONDS} s of audio, seed 1; ${info.threads} threads, kernels ${info.isa}, ${cpus().length} CPUs, node ${process.version}`,
);

const jb = await loadJukebox({ backend: 'cpu' });
const runs = [];
try {
  for (let r = 0; r <= REPS; r++) {
    const out = join(tmp, `in-process-${r}`);
    const u0 = process.resourceUsage();
    const t0 = performance.now();
    const result = await jb.generate({ seconds: SECONDS, seed: 1, outputDir: out });
    await writeRunAudio(out, result, 's16');
    const wall = (performance.now() - t0) / 1000;
    const u1 = process.resourceUsage();
    const audioSeconds = result.sampleLength / result.sampleRate;
    const run = {
      wall,
      rtf: audioSeconds / wall,
      user: (u1.userCPUTime - u0.userCPUTime) / 1e6,
      sys: (u1.systemCPUTime - u0.systemCPUTime) / 1e6,
      vol: u1.voluntaryContextSwitches - u0.voluntaryContextSwitches,
      invol: u1.involuntaryContextSwitches - u0.involuntaryContextSwitches,
    };
    rmSync(out, { recursive: true, force: true });
    if (r === 0) continue; // warm-up: page cache, first-call costs
    runs.push(run);
    console.log(
      `  in-process run ${r}: ${fmt(run.wall)} s wall for ${fmt(audioSeconds)} s of audio (${fmt(run.rtf)}x real time); ` +
        `CPU ${fmt(run.user)} s user + ${fmt(run.sys)} s sys (sys ${fmt((100 * run.sys) / Math.max(1e-9, run.user + run.sys), 0)}% of CPU); ` +
        `context switches ${run.vol} voluntary, ${run.invol} involuntary`,
    );
  }
} finally {
  jb.dispose();
}
const byWall = [...runs].sort((a, b) => a.wall - b.wall);
const best = byWall[0], median = byWall[Math.floor(byWall.length / 2)];
console.log(
  `  generate ${SECONDS} s, default model (in process): best ${fmt(best.wall)} s wall = ${fmt(best.rtf)}x real time, median ${fmt(median.wall)} s; ` +
    `sys share ${fmt((100 * median.sys) / Math.max(1e-9, median.user + median.sys), 0)}%, ${median.vol} voluntary context switches (median run)`,
);

// The CLI command itself, as a user types it.
for (const threads of [undefined, '1']) {
  const out = join(tmp, `cli-${threads ?? 'default'}`);
  const env = { ...process.env, CI: '1' };
  if (threads) env.JUKEBOX_THREADS = threads;
  else delete env.JUKEBOX_THREADS;
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, 'generate', '--seconds', String(SECONDS), '-o', out, '--seed', '1'], { env, encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`jukebox generate failed: ${r.stderr}`);
  console.log(
    `  CLI \`jukebox generate --seconds ${SECONDS} -o out/\`${threads ? ` (JUKEBOX_THREADS=${threads})` : ''}: ${fmt(wall)} s wall = ${fmt(SECONDS / wall)}x real time (node start-up included)`,
  );
}
rmSync(tmp, { recursive: true, force: true });
