/**
 * Window schedules against the figures the reference computed with the original's
 * get_starts (§d.2).
 */
import { describe, expect, it } from 'vitest';
import { levelWindows, windowStarts } from '../lib/generate/schedule.js';

describe('window schedule', () => {
  it('20 s: 1b_lyrics top [0, 746]; level 1 six windows; level 0 26 windows ending at 102048', () => {
    expect(windowStarts(6890, 6144, 768)).toEqual([0, 746]);
    expect(windowStarts(27560, 8192, 4096)).toEqual([0, 4096, 8192, 12288, 16384, 19368]);
    const l0 = windowStarts(110240, 8192, 4096);
    expect(l0.length).toBe(26);
    expect(l0.at(-1)).toBe(102048);
  });

  it('60 s and 180 s window counts', () => {
    const c = (total: number, n: number, hop: number) => {
      const s = windowStarts(total, n, hop);
      return [s.length, s.at(-1)];
    };
    expect(c(20671, 8192, 1024)).toEqual([14, 12479]);
    expect(c(82684, 8192, 4096)).toEqual([20, 74492]);
    expect(c(330736, 8192, 4096)).toEqual([80, 322544]);
    expect(c(62015, 8192, 1024)[0]).toBe(54);
    expect(c(248060, 8192, 4096)[0]).toBe(60);
    expect(c(992240, 8192, 4096)[0]).toBe(242);
  });

  it('a level shorter than a window is one partial window', () => {
    expect(levelWindows(6890, 8192, 0.125)).toEqual([{ start: 0, length: 6890 }]);
    expect(levelWindows(8192, 8192, 0.5)).toEqual([{ start: 0, length: 8192 }]);
  });
});
