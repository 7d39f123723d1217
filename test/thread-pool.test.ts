/**
 * The thread pool (csrc/core/thread_pool.*): its stress program built with the machine's C++
 * compiler and run, under ThreadSanitizer where the compiler can (no race report allowed),
 * and with spinning off (every hand-off through the futex); and the engine's results do not
 * depend on the thread count: the default model's codes at JUKEBOX_THREADS=1 and 3 are equal.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../lib/native.js';
import { readNpz } from '../lib/npz.js';

const cxx = [process.env.CXX, 'g++', 'c++', 'clang++'].find((c) => c && spawnSync(c, ['--version']).status === 0);
const work = mkdtempSync(join(tmpdir(), 'jukebox-pool-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function build(name: string, flags: string[]): string | undefined {
  const exe = join(work, name);
  const r = spawnSync(cxx!, ['-std=c++17', '-O1', '-g', '-pthread', ...flags, `-I${join(packageRoot, 'csrc')}`,
    join(packageRoot, 'csrc/core/test/thread_pool_stress.cc'), join(packageRoot, 'csrc/core/thread_pool.cc'), '-o', exe], { encoding: 'utf8' });
  return r.status === 0 ? exe : undefined;
}

describe.runIf(cxx !== undefined)('thread pool stress', () => {
  it('every task once, exceptions delivered, concurrent callers; spinning and futex-only', () => {
    const exe = build('stress', ['-Wall', '-Werror'])!;
    expect(exe).toBeDefined();
    for (const spin of ['50', '0']) {
      const r = spawnSync(exe, ['4', '20000'], { encoding: 'utf8', env: { ...process.env, JUKEBOX_SPIN_US: spin }, timeout: 120_000 });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout.match(/^ok round/gm)).toHaveLength(3);
    }
  }, 180_000);

  it('under ThreadSanitizer: no data race reported', (ctx) => {
    const exe = build('stress-tsan', ['-fsanitize=thread']);
    if (!exe) return ctx.skip(); // the compiler has no TSan runtime here
    for (const spin of ['50', '0']) {
      const r = spawnSync(exe, ['3', '3000'], { encoding: 'utf8', env: { ...process.env, JUKEBOX_SPIN_US: spin, TSAN_OPTIONS: 'halt_on_error=1' }, timeout: 300_000 });
      expect(r.stderr).not.toMatch(/ThreadSanitizer/);
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    }
  }, 400_000);
});

describe('results do not depend on the thread count', () => {
  it('the default model generates the same codes at JUKEBOX_THREADS=1 and 3', () => {
    const codes = (threads: string) => {
      const out = join(work, `gen-${threads}`);
      const r = spawnSync(process.execPath, [join(packageRoot, 'bin/jukebox.js'), 'generate', '--seconds', '2', '--seed', '5', '-o', out],
        { encoding: 'utf8', env: { ...process.env, JUKEBOX_THREADS: threads, CI: '1' }, timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      return [0, 1, 2].map((l) => Array.from(readNpz(join(out, `codes_level_${l}.npz`))[`level_${l}`]!.data as Int32Array));
    };
    const one = codes('1');
    const three = codes('3');
    for (let l = 0; l < 3; l++) expect(three[l], `level ${l}`).toEqual(one[l]);
    expect(one[0]!.length).toBeGreaterThan(1000);
  }, 240_000);
});
