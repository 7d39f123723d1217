/**
 * Checks a file's tensors against the layout the hyperparameters imply, the way
 * load_state_dict(strict=True) would, but with errors that name the file, the key and
 * what was expected.
 */
import { JukeboxError } from '../errors.js';
import { INT8_SCALE_SUFFIX, int8Axis, int8ScaleShape } from '../checkpoint/dtype-convert.js';
import { readFloat32, type ModelFile } from '../model-file.js';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

export function checkTensors(file: ModelFile, expected: Map<string, number[]>, what: string): void {
  for (const [key, shape] of expected) {
    const t = file.tensors.get(key);
    if (!t) {
      throw new JukeboxError(
        'ERR_MISSING_KEY',
        `${file.path}: missing weight "${key}" (shape [${shape.join(', ')}]) that the ${what} hyperparameters require`,
      );
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new JukeboxError(
        'ERR_SHAPE_MISMATCH',
        `${file.path}: weight "${key}" has shape [${t.shape.join(', ')}] but the ${what} hyperparameters imply [${shape.join(', ')}]; ` +
          `check the preset or config used for this file`,
      );
    }
    if (t.dtype === 'I8') {
      checkInt8(file, key, t.shape);
    } else if (!FLOAT_DTYPES.has(t.dtype)) {
      throw new JukeboxError('ERR_DTYPE', `${file.path}: weight "${key}" has dtype ${t.dtype}; expected F32, F16 or BF16`);
    }
  }
  // an int8 weight's scales belong to it; any other "<key>.__scale" is unexpected
  const isScale = (k: string) => k.endsWith(INT8_SCALE_SUFFIX) && file.tensors.get(k.slice(0, -INT8_SCALE_SUFFIX.length))?.dtype === 'I8' && expected.has(k.slice(0, -INT8_SCALE_SUFFIX.length));
  const extra = [...file.tensors.keys()].filter((k) => !expected.has(k) && !isScale(k));
  if (extra.length > 0) {
    const shown = extra.slice(0, 5).map((k) => `"${k}"`).join(', ');
    throw new JukeboxError(
      'ERR_UNEXPECTED_KEY',
      `${file.path}: ${extra.length} weight(s) the ${what} hyperparameters do not account for: ${shown}${extra.length > 5 ? ', ...' : ''}; ` +
        `the hyperparameters probably do not match this checkpoint`,
    );
  }
}

/**
 * An int8 weight (`convert --dtype int8`, lib/checkpoint/dtype-convert.ts): only where int8
 * is defined (a transformer matrix or x_out), with its F32 scales "<key>.__scale" shaped
 * for its output channels, every scale finite and >= 0.
 */
function checkInt8(file: ModelFile, key: string, shape: readonly number[]): void {
  const axis = int8Axis(key);
  if (axis === undefined || shape.length !== 2) {
    throw new JukeboxError('ERR_DTYPE', `${file.path}: weight "${key}" has dtype I8; int8 is only for the transformer matrices and x_out (expected F32, F16 or BF16 here)`);
  }
  const name = key + INT8_SCALE_SUFFIX;
  const s = file.tensors.get(name);
  if (!s) throw new JukeboxError('ERR_MISSING_KEY', `${file.path}: weight "${key}" is int8 but its scales "${name}" are missing`);
  if (s.dtype !== 'F32') throw new JukeboxError('ERR_DTYPE', `${file.path}: int8 scales "${name}" have dtype ${s.dtype}; expected F32`);
  const want = int8ScaleShape(shape, axis);
  if (s.shape.length !== 2 || s.shape[0] !== want[0] || s.shape[1] !== want[1]) {
    throw new JukeboxError('ERR_SHAPE_MISMATCH', `${file.path}: int8 scales "${name}" have shape [${s.shape.join(', ')}]; "${key}" [${shape.join(', ')}] needs [${want.join(', ')}] (one per output channel)`);
  }
  const v = readFloat32(file, name);
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i]) || v[i]! < 0) {
      throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${file.path}: int8 scales "${name}" hold ${v[i]} at channel ${i}; scales must be finite and >= 0`);
    }
  }
}
