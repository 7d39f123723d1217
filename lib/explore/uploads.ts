/**
 * Receiving uploads (the audio a prime job starts from) without holding them in memory: the
 * body is written to a file in the uploads folder as it arrives, the size cap is enforced
 * while it streams, and a partial file is deleted when the client goes away or sends too
 * much. A gate bounds how many uploads run at once and how many bytes they may add up to,
 * so a few large uploads at once cannot fill the disk or starve the server; a refused one
 * is answered at once (429 with Retry-After, or 413).
 */
import { createWriteStream, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';

export interface UploadLimits {
  /** Largest upload, in bytes. */
  maxBytes: number;
  /** Uploads received (and then checked) at once. */
  maxConcurrent: number;
  /** Bytes all uploads in progress may add up to (each counts its Content-Length, or maxBytes without one). */
  maxBytesInFlight: number;
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = { maxBytes: 256 * 2 ** 20, maxConcurrent: 2, maxBytesInFlight: 384 * 2 ** 20 };

export class UploadGate {
  private active = 0;
  private reserved = 0;

  constructor(readonly limits: UploadLimits) {}

  /** A slot for an upload of up to `bytes`, or undefined when there is none now; call the result when done. */
  tryAcquire(bytes: number): (() => void) | undefined {
    if (this.active >= this.limits.maxConcurrent || this.reserved + bytes > this.limits.maxBytesInFlight) return undefined;
    this.active++;
    this.reserved += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.reserved -= bytes;
    };
  }
}

/** The body was larger than allowed (the file was removed). */
export class UploadTooLarge extends Error {}
/** The client went away before the body ended (the file was removed). */
export class UploadAborted extends Error {}

/**
 * Streams the request body into a new file at `path` (which must not exist), honouring
 * backpressure so that only a socket's worth of the body is ever in memory. Past `limit`
 * bytes it stops reading, removes the file and fails with UploadTooLarge; when the client
 * disconnects it removes the file and fails with UploadAborted. Resolves with the size.
 */
export function receiveToFile(req: IncomingMessage, path: string, limit: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(path, { flags: 'wx' });
    let received = 0;
    let settled = false;
    const cleanUp = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
    };
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      cleanUp();
      // Removed once the stream has closed its file: it may still be opening it.
      out.once('close', () => rmSync(path, { force: true }));
      out.destroy();
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) return fail(new UploadTooLarge(`more than ${limit} bytes`));
      if (!out.write(chunk)) {
        req.pause();
        out.once('drain', () => req.resume());
      }
    };
    const onEnd = () => {
      if (settled) return;
      settled = true;
      cleanUp();
      // Answered once the file is closed, so it can be read (or renamed) at once.
      out.once('close', () => {
        if (out.errored) {
          rmSync(path, { force: true });
          reject(out.errored);
        } else resolve(received);
      });
      out.end();
    };
    const onClose = () => {
      if (!req.complete) fail(new UploadAborted('the client went away during the upload'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    out.on('error', (e) => fail(e));
  });
}

/**
 * After an early answer (413, 429), reads and drops what the client still sends, so that it
 * sees the answer rather than a connection reset; one that sends more than `limit` further
 * bytes is cut off. Nothing of it is kept.
 */
export function discardBody(req: IncomingMessage, limit: number): void {
  if (req.complete) return;
  let dropped = 0;
  req.on('data', (c: Buffer) => {
    dropped += c.length;
    if (dropped > limit) req.socket.destroy();
  });
  req.resume();
}
