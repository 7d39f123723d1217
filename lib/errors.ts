/**
 * Every failure the package reports is a JukeboxError with a stable `code`, so callers
 * (and the CLI) can branch on it without parsing messages. Messages name the file, key
 * or value at fault and, where there is one, what to do about it.
 */
export type JukeboxErrorCode =
  | 'ERR_CHECKPOINT_GLOBAL' // pickle names a global outside the allow-list where it matters
  | 'ERR_CHECKPOINT_FORMAT' // not a checkpoint we understand (magic, pickle syntax, zip layout)
  | 'ERR_CHECKPOINT_TRUNCATED' // file ends before a record or storage it declares
  | 'ERR_MISSING_KEY' // a weight the model needs is absent
  | 'ERR_UNEXPECTED_KEY' // a weight the model does not have is present
  | 'ERR_SHAPE_MISMATCH' // a weight's shape disagrees with the hyperparameters
  | 'ERR_DTYPE' // a weight's dtype is not supported for that use
  | 'ERR_HPARAMS' // missing or invalid hyperparameters
  | 'ERR_MODEL_KIND' // e.g. a prior given where a VQ-VAE is expected
  | 'ERR_MODEL_SET' // a model folder's model.json is missing, malformed or names missing files
  | 'ERR_AUDIO_FORMAT' // unreadable or unsupported audio
  | 'ERR_CODES' // codes out of range or with the wrong shape
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_IO'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_ABORTED'
  | 'ERR_DISPOSED'
  | 'ERR_BACKEND_UNAVAILABLE' // a compute backend was requested (e.g. backend: 'cuda') that cannot run here
  | 'ERR_NATIVE'; // the native addon could not be loaded or failed unexpectedly

export class JukeboxError extends Error {
  readonly code: JukeboxErrorCode;
  constructor(code: JukeboxErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JukeboxError';
    this.code = code;
  }
}

export function isJukeboxError(e: unknown, code?: JukeboxErrorCode): e is JukeboxError {
  return e instanceof JukeboxError && (code === undefined || e.code === code);
}

/**
 * A value as short JSON for an error message: cut to `max` characters, and safe on hostile
 * input (JSON.stringify of a deeply nested array from a file overflows the stack, which
 * would turn a clean error into a RangeError).
 */
export function shortJson(v: unknown, max = 80): string {
  let t: string;
  try {
    t = JSON.stringify(v) ?? String(v);
  } catch {
    t = Array.isArray(v) ? `[a nested list of ${v.length}]` : typeof v === 'object' && v !== null ? '{an object too deep to show}' : String(v);
  }
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}
