/**
 * A bounded fuzz pass over every reader (scripts/fuzz: checkpoints, safetensors, hyperparameter
 * files, WAV/FLAC/Vorbis/Opus/MP3, npz/npy, and the hand-made hostile files), each mutant run
 * in a worker process the way a command would read it. Every case must end as a success or a
 * JukeboxError: no raw exception, crash, out-of-memory or hang. The seed is fixed so a CI
 * failure can be replayed (`node scripts/fuzz/fuzz.mjs --seed 20261204 --cases N`); the long
 * pass by hand is `npm run fuzz`.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM script without types
import { formatCounts, runFuzz } from '../scripts/fuzz/fuzz.mjs';

interface Finding {
  family: string;
  outcome: string;
  case: number;
  name?: string;
  message: string;
}

describe('fuzz', () => {
  it('a bounded pass over every reader: only successes and clean errors', async () => {
    const res = (await runFuzz({ cases: 1500, seconds: 120, seed: 20261204, timeoutMs: 10_000 })) as { cases: number; findings: Finding[] };
    console.log(formatCounts(res));
    const shown = res.findings.map((f) => `${f.outcome} ${f.family} #${f.case}: ${f.name ?? ''} ${f.message}`).join('\n');
    expect(res.cases).toBeGreaterThan(100);
    expect(res.findings, shown).toEqual([]);
  }, 200_000);
});
