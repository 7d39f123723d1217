/**
 * What the explorer page reads: the catalogue of samples found in the given generate
 * output folders, and the job API of a live server. Shared by the server (lib/explore) and
 * the page (lib/explore/web), so it holds types only.
 *
 * Every URL in the catalogue is relative to the page, so the same page works from the
 * live server and from a static export opened as files (file://): audio, images and
 * downloads are plain links, and everything the page draws itself (waveform peaks, the
 * lyrics alignment) is inline in the catalogue.
 */

export const CATALOG_VERSION = 1;

export interface Catalog {
  version: typeof CATALOG_VERSION;
  /** A server that can run jobs (continue / upsample); false in a static export. */
  live: boolean;
  /** ISO time the catalogue was built. */
  generatedAt: string;
  /** The folders given on the command line, as shown to the user. */
  roots: string[];
  samples: SampleEntry[];
  /** Why a folder that looked like an output folder was left out (unreadable run.json...). */
  problems: string[];
  /** Jobs run on this Redis job queue (`jukebox explore --redis`): its name and the server (password hidden). */
  queue?: { name: string; redis: string };
}

export interface SampleEntry {
  /** Unique and stable across rescans: "<run id>~<sample index>", URL-safe. */
  id: string;
  /** The output folder, relative to its root ("." for the root itself), and its id. */
  runId: string;
  runPath: string;
  index: number;
  artist: string | null;
  /** One or several genres, joined with ", ". */
  genre: string | null;
  lyrics: string | null;
  seed: number;
  /** Model folder name or the top prior's file name; "unknown" for folders from older versions. */
  model: string;
  /** ISO time the run was written (its run.json's mtime). */
  createdAt: string;
  /** Seconds of audio (of the lowest sampled level). */
  duration: number;
  sampleRate: number;
  settings: SampleSettings;
  /** Decoded levels, top (highest number) first. */
  levels: LevelEntry[];
  /** The run's codes (.npz, one file per level), for download. */
  codes: { level: number; url: string }[];
  alignment: AlignmentEntry | null;
  /** Levels that have codes but no upsampled audio below them (an "upsample" job applies). */
  canUpsample: boolean;
  /** Set for samples made from another sample by a job from the page. */
  parent: { sampleId: string; action: 'continue' | 'upsample'; fromSeconds: number } | null;
}

export interface SampleSettings {
  temperature: number | number[];
  topK: number;
  topP: number;
  /** Levels sampled in this run (the others came from codes or a prompt). */
  levels: number[];
  hopFractions: number[];
  /** The song length the timing labels describe. */
  totalSeconds: number;
  /** Seconds of primed audio (0 when not primed). */
  primedSeconds: number;
  samples: number;
}

export interface LevelEntry {
  level: number;
  /** "top", "middle", "bottom" for a 3-level model; "level N" otherwise. */
  label: string;
  audioUrl: string;
  /** Spectrogram PNG: time left to right over the whole clip, low frequencies at the bottom. */
  spectrogramUrl: string;
  /** Waveform: per column, min and max of the samples in [-1, 1], PEAK_COLUMNS columns. */
  peaks: { min: number[]; max: number[] };
  duration: number;
}

export interface AlignmentEntry {
  /** The lyrics as the model saw them (cleaned); character j is lyric token j. */
  text: string;
  /** Top-level tokens per second of audio. */
  tokensPerSecond: number;
  /**
   * For every top-level token, the character the alignment attends to most (smoothed over
   * a short window), or -1. The page highlights the word that holds focus[floor(t * tokensPerSecond)].
   */
  focus: number[];
  /** Heatmap PNG: x = time (whole clip), y = lyric characters (first at the top). */
  heatmapUrl: string;
}

/** 'generate': a job on the Redis queue that another submitter (`jukebox submit`) put there. */
export type JobAction = 'continue' | 'upsample' | 'prime' | 'generate';

/** POST api/jobs */
export interface JobRequest {
  /** continue / upsample: the sample to start from. */
  sampleId?: string;
  action: JobAction;
  /**
   * continue: keep the sample's codes up to this time and sample on from there;
   * prime: use this many seconds of the uploaded audio as the start;
   * upsample: ignored (the whole top level is upsampled).
   */
  fromSeconds: number;
  /** continue / prime: length of the result in seconds (> fromSeconds). */
  seconds?: number;
  seed?: number;
  temperature?: number;
  /** prime: the id POST api/primes answered with. */
  prime?: string;
  /** prime: the labels of the new song (continue and upsample keep the sample's). */
  artist?: string;
  genre?: string;
  lyrics?: string;
}

/**
 * POST api/primes with the audio file as the body (Content-Type audio/* or
 * application/octet-stream, the file name in X-Filename, URL-encoded) answers this.
 */
export interface PrimeInfo {
  id: string;
  name: string;
  /** Seconds of audio in the file. */
  duration: number;
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobInfo {
  id: string;
  request: JobRequest;
  state: JobState;
  /** 0..1 over the whole job. */
  fraction: number;
  /** One line for the user: "level 1: window 2/4", "decoding", the error... */
  message: string;
  etaSeconds: number | null;
  /** Samples the job produced (catalogue ids), when done. */
  sampleIds: string[];
  /**
   * A server on a Redis job queue (`jukebox explore --redis`): the job's id there, the worker
   * running it, how many times it was started (a worker that died or stopped hands it to the
   * next), the folder it writes, and for others' jobs which sample of their run it is.
   */
  queue?: { id: string; worker: string | null; starts: number; outputDir: string; sample?: number; samples?: number };
}

/**
 * GET api/jobs/<id>/events is a server-sent event stream of JobInfo objects (event name
 * "job"), the first sent at once, the last with state done/failed/cancelled.
 * POST api/jobs/<id>/cancel stops a job. GET catalog.json is this catalogue; the page's
 * catalog.js sets window.__JUKEBOX_CATALOG__ to it.
 */
export const PEAK_COLUMNS = 1000;
