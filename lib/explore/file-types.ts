/**
 * How files from the explored folders may reach a browser. Those folders are data, possibly
 * someone else's (a shared run folder, an uploaded file): whatever they hold must never run
 * as the page's own script or document. So only the types the page itself uses are served
 * as what they are, and all of them are types a browser never executes (with
 * `X-Content-Type-Options: nosniff` it will not guess otherwise); everything else, .html,
 * .js, .svg and the like included, goes out as an `application/octet-stream` attachment, a
 * download. The page's own files (index.html, app.js, app.css, catalog.js) come from the
 * package's asset folder only (lib/explore/web-assets.ts), never from here.
 *
 * What the page uses from the folders: each level's WAV (its <audio> elements and the WAV
 * download link) and the codes' .npz (a download link). Spectrograms and heatmaps are PNGs
 * the server draws (derived/...), not files from the folders. PNG and JSON are allowed too:
 * inert, and useful to look at a run's run.json or a picture someone put beside it.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface ServedType {
  /** The Content-Type header. */
  type: string;
  /** Shown in the browser (inline) rather than downloaded (attachment). */
  inline: boolean;
}

const INERT: Record<string, ServedType> = {
  '.wav': { type: 'audio/wav', inline: true },
  '.png': { type: 'image/png', inline: true },
  '.json': { type: 'application/json; charset=utf-8', inline: true },
  // The page links codes as downloads; octet-stream is what they are.
  '.npz': { type: 'application/octet-stream', inline: false },
};

const DOWNLOAD: ServedType = { type: 'application/octet-stream', inline: false };

/** Lower-case extension with its dot ('' when none). */
export function extensionOf(name: string): string {
  return /\.[a-z0-9]+$/i.exec(name)?.[0].toLowerCase() ?? '';
}

/** The type a file from an explored folder is served as, by its name (the URL's last segment). */
export function exploredFileType(name: string): ServedType {
  return INERT[extensionOf(name)] ?? DOWNLOAD;
}

/** A Content-Disposition header for a file from an explored folder. */
export function contentDisposition(name: string, inline: boolean): string {
  const safe = name.replace(/[^\w.-]/g, '_').replace(/^\.+/, '') || 'file';
  return `${inline ? 'inline' : 'attachment'}; filename="${safe}"`;
}

/**
 * The CSP sent with files from the explored folders, on top of nosniff: should a browser
 * ever render one as a document anyway, it gets a unique origin (sandbox) and may load and
 * run nothing, so it cannot act with the page's rights. (A CSP on audio or an image fetched
 * by the page does not apply to the page; it affects only such a document.)
 */
export const EXPLORED_FILE_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'";

// What a file of each inert type starts with: the static export checks it, so that a file
// named sample_0.wav (or a link with that name to some page) holding HTML is not published.
const MAGIC: Record<string, (b: Buffer) => boolean> = {
  '.wav': (b) => ['RIFF', 'RF64', 'BW64'].includes(b.toString('latin1', 0, 4)) && b.toString('latin1', 8, 12) === 'WAVE',
  '.png': (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
  // numpy's savez writes a zip: a local file header, or an end-of-central-directory record when empty.
  '.npz': (b) => b.toString('latin1', 0, 4) === 'PK\x03\x04' || b.toString('latin1', 0, 4) === 'PK\x05\x06',
  '.json': (b) => /^\s*[[{]/.test(b.toString('latin1')),
};

/**
 * Why the static export must not copy the file at `abs` under `name`, or undefined when it
 * may: the name must have an inert type and the content must look like that type. A static
 * host picks the type from the extension, often without nosniff, and a page opened from disk
 * has no headers at all, so the export holds nothing but those types.
 */
export function exportRefusal(name: string, abs: string): string | undefined {
  const ext = extensionOf(name);
  const check = MAGIC[ext];
  if (!check || !INERT[ext]) return `${name}: only ${Object.keys(INERT).join(', ')} files are exported`;
  const head = Buffer.alloc(16);
  let n = 0;
  const fd = openSync(abs, 'r');
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  return check(head.subarray(0, n)) ? undefined : `${name}: its content is not ${ext.slice(1).toUpperCase()}, so it was left out`;
}
