/**
 * The explorer's catalogue: every generate output folder (a folder with run.json) under the
 * given roots, and for each of its samples the metadata, the decoded levels' WAVs with
 * waveform peaks, the codes, and the lyrics alignment (lib/explore/catalog-types.ts says
 * what the page gets). Folders are found by walking each root a few levels deep, so a root
 * may be one output folder or a folder of them; runs the explorer made itself sit inside
 * their root and are found the same way.
 *
 * URLs name files by root index and path below the root ("files/0/run-a/sample_0.wav"),
 * never by absolute path; the static export writes files at exactly those paths.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { parseWav } from '../audio/wav.js';
import { readNpz } from '../npz.js';
import { sampleWavName, type RunState } from '../generate/run-files.js';
import { CATALOG_VERSION, PEAK_COLUMNS, type AlignmentEntry, type Catalog, type LevelEntry, type SampleEntry } from './catalog-types.js';
import { waveformPeaks } from './peaks.js';
import { alignmentFocus } from './alignment-view.js';

/** How deep below a root output folders are looked for. */
const MAX_DEPTH = 4;
/** Smoothing of the alignment's focus, in seconds: steadier highlighting than token by token. */
const FOCUS_SMOOTH_SECONDS = 0.25;

export interface ExploreRoot {
  /** As the user gave it (shown on the page). */
  label: string;
  /** Resolved real path. */
  path: string;
}

/** One output folder. */
export interface RunFolder {
  rootIndex: number;
  /** Path below the root, '/'-separated; '.' for the root itself. */
  rel: string;
  abs: string;
  id: string;
  state: RunState;
  mtime: Date;
  /** Levels with a codes_level_L.npz in the folder, top first. */
  codeLevels: number[];
}

export function runId(rootIndex: number, rel: string): string {
  return rel === '.' ? `${rootIndex}` : `${rootIndex}/${rel}`;
}

export function sampleId(run: { id: string }, index: number): string {
  return `${run.id}~${index}`;
}

/** URL path of a file below a root: every segment percent-encoded. */
export function fileUrl(prefix: string, rootIndex: number, rel: string, name: string): string {
  const parts = rel === '.' ? [] : rel.split('/');
  return [prefix, String(rootIndex), ...parts, name].map((p, i) => (i === 0 ? p : encodeURIComponent(p))).join('/');
}

/** Walks the roots for folders holding run.json. */
export function findRuns(roots: ExploreRoot[], problems: string[]): RunFolder[] {
  const runs: RunFolder[] = [];
  roots.forEach((root, rootIndex) => {
    const walk = (dir: string, depth: number) => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch (e) {
        problems.push(`${dir}: ${(e as Error).message}`);
        return;
      }
      if (entries.some((e) => e.isFile() && e.name === 'run.json')) {
        const rel = relative(root.path, dir).split(sep).join('/') || '.';
        try {
          const runJson = join(dir, 'run.json');
          const state = parseRunState(readFileSync(runJson, 'utf8'));
          runs.push({ rootIndex, rel, abs: dir, id: runId(rootIndex, rel), state, mtime: statSync(runJson).mtime, codeLevels: codeLevels(entries.map((e) => e.name)) });
        } catch (e) {
          problems.push(`${join(root.label, rel)}: run.json is not readable (${(e as Error).message})`);
        }
      }
      if (depth >= MAX_DEPTH) return;
      for (const e of entries) {
        // Symlinked folders are not followed: the walk stays inside the root.
        if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules') walk(join(dir, e.name), depth + 1);
      }
    };
    walk(root.path, 0);
  });
  return runs;
}

function parseRunState(text: string): RunState {
  const s = JSON.parse(text) as RunState;
  const ok =
    s && typeof s === 'object' && Number.isInteger(s.samples) && s.samples > 0 && s.samples < 10_000 &&
    Number.isFinite(s.sampleLength) && Number.isFinite(s.totalLength) && Array.isArray(s.levels) && s.levels.every((l) => Number.isInteger(l) && l >= 0 && l < 16);
  if (!ok) throw new Error('not a generate run.json (samples, sampleLength, totalLength, levels)');
  return s;
}

interface CacheEntry<T> {
  key: string;
  value: T;
}

/**
 * Builds catalogues; remembers each WAV's peaks and each alignment's focus by file size
 * and mtime, so a rescan after a job only reads the new files.
 */
export class CatalogBuilder {
  private readonly peaks = new Map<string, CacheEntry<{ peaks: LevelEntry['peaks']; duration: number; sampleRate: number }>>();
  private readonly alignments = new Map<string, CacheEntry<AlignmentEntry | null>>();

  constructor(readonly roots: ExploreRoot[]) {}

  build(live: boolean): { catalog: Catalog; runs: RunFolder[] } {
    const problems: string[] = [];
    const runs = findRuns(this.roots, problems);
    const byPath = new Map(runs.map((r) => [r.abs, r]));
    const samples: SampleEntry[] = [];
    for (const run of runs) {
      for (let i = 0; i < run.state.samples; i++) {
        try {
          const entry = this.sample(run, i, byPath);
          if (entry) samples.push(entry);
        } catch (e) {
          problems.push(`${join(this.roots[run.rootIndex].label, run.rel)} sample ${i}: ${(e as Error).message}`);
        }
      }
    }
    samples.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
    const catalog: Catalog = {
      version: CATALOG_VERSION,
      live,
      generatedAt: new Date().toISOString(),
      roots: this.roots.map((r) => r.label),
      samples,
      problems,
    };
    return { catalog, runs };
  }

  /** One sample, or undefined when no level of it has been decoded (a run still going, or interrupted). */
  private sample(run: RunFolder, index: number, byPath: Map<string, RunFolder>): SampleEntry | undefined {
    const s = run.state;
    const lowest = Math.min(...s.levels);
    const maxLevel = Math.max(...s.levels, ...run.codeLevels);
    const levels: LevelEntry[] = [];
    let sampleRate = 0;
    for (let level = maxLevel; level >= 0; level--) {
      const name = sampleWavName(level, index, lowest);
      const path = join(run.abs, name);
      if (!existsSync(path)) continue;
      const w = this.wavSummary(path);
      sampleRate = w.sampleRate;
      levels.push({
        level,
        label: levelLabel(level, maxLevel),
        audioUrl: fileUrl('files', run.rootIndex, run.rel, name),
        spectrogramUrl: fileUrl('derived/spectrogram', run.rootIndex, run.rel, `${name}.png`),
        peaks: w.peaks,
        duration: w.duration,
      });
    }
    if (levels.length === 0) return undefined;
    const codes = run.codeLevels.map((level) => ({ level, url: fileUrl('files', run.rootIndex, run.rel, `codes_level_${level}.npz`) }));
    // The length of what was sampled (a level below it may hold only a prompt's codes).
    const duration = (levels.find((l) => l.level === lowest) ?? levels[levels.length - 1]).duration;
    const parentRun = s.parent ? byPath.get(resolve(run.abs, s.parent.run)) : undefined;
    return {
      id: sampleId(run, index),
      runId: run.id,
      runPath: join(this.roots[run.rootIndex].label, run.rel),
      index,
      artist: s.artist === null || s.artist === undefined ? null : String(s.artist),
      genre: s.genre === null || s.genre === undefined ? null : Array.isArray(s.genre) ? s.genre.join(', ') : String(s.genre),
      lyrics: s.lyrics ?? null,
      seed: s.seed,
      model: s.model?.name ?? 'unknown',
      createdAt: run.mtime.toISOString(),
      duration,
      sampleRate,
      settings: {
        temperature: s.temperature,
        topK: s.topK,
        topP: s.topP,
        levels: s.levels,
        hopFractions: s.hopFractions,
        totalSeconds: sampleRate ? s.totalLength / sampleRate : 0,
        primedSeconds: sampleRate ? s.primed / sampleRate : 0,
        samples: s.samples,
      },
      levels,
      codes,
      alignment: this.alignment(run, index, duration),
      // (whether the recorded model has a prior below; a run from an older version has no record)
      canUpsample: lowest > 0 && codes.some((c) => c.level === lowest) && (!s.model || s.model.priors.some((p, l) => p !== null && l < lowest)),
      parent: s.parent && parentRun ? { sampleId: sampleId(parentRun, s.parent.sample), action: s.parent.action, fromSeconds: s.parent.fromSeconds } : null,
    };
  }

  private wavSummary(path: string) {
    const st = statSync(path);
    const key = `${st.size}:${st.mtimeMs}`;
    const hit = this.peaks.get(path);
    if (hit?.key === key) return hit.value;
    const wav = parseWav(readFileSync(path), path);
    const mono = wav.channels[0];
    const value = { peaks: waveformPeaks(mono, PEAK_COLUMNS), duration: mono.length / wav.sampleRate, sampleRate: wav.sampleRate };
    this.peaks.set(path, { key, value });
    return value;
  }

  private alignment(run: RunFolder, index: number, duration: number): AlignmentEntry | null {
    const path = join(run.abs, 'alignment.npz');
    if (!existsSync(path) || !(duration > 0)) return null;
    const st = statSync(path);
    const key = `${st.size}:${st.mtimeMs}:${duration}`;
    const cacheKey = `${path}#${index}`;
    const hit = this.alignments.get(cacheKey);
    if (hit?.key === key) return hit.value;
    const a = readAlignment(path, index);
    let value: AlignmentEntry | null = null;
    if (a) {
      const tokensPerSecond = a.tokens / duration;
      value = {
        text: a.text,
        tokensPerSecond,
        focus: alignmentFocus(a.weights, a.tokens, a.lyricTokens, Math.max(1, Math.round(FOCUS_SMOOTH_SECONDS * tokensPerSecond))),
        heatmapUrl: fileUrl('derived/heatmap', run.rootIndex, run.rel, `sample_${index}.png`),
      };
    }
    this.alignments.set(cacheKey, { key, value });
    return value;
  }
}

/** Levels with a codes_level_L.npz among a folder's file names, top first. */
function codeLevels(names: string[]): number[] {
  const out: number[] = [];
  for (const f of names) {
    const m = /^codes_level_(\d+)\.npz$/.exec(f);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => b - a);
}

function levelLabel(level: number, top: number): string {
  if (top === 2) return ['bottom', 'middle', 'top'][level];
  return level === top ? 'top' : level === 0 ? 'bottom' : `level ${level}`;
}

/** One sample's alignment from alignment.npz, with its lyrics text (see generate.ts). */
export function readAlignment(path: string, index: number): { text: string; weights: Float32Array; tokens: number; lyricTokens: number } | undefined {
  const npz = readNpz(path);
  const w = npz[`sample_${index}`];
  if (!w || w.dtype !== 'float32' || w.shape.length !== 2) return undefined;
  const [tokens, lyricTokens] = w.shape;
  const bytes = npz.lyric_text;
  let text: string;
  if (bytes && bytes.dtype === 'uint8' && bytes.shape[0] === lyricTokens) {
    text = Buffer.from(bytes.data as Uint8Array).toString('latin1');
  } else {
    // Folders from before lyric_text: the characters are not known without the model's
    // vocabulary, so show placeholders of the right length.
    text = '\u00b7'.repeat(lyricTokens);
  }
  return { text, weights: w.data as Float32Array, tokens, lyricTokens };
}
