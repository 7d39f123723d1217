/**
 * Checks a file's tensors against the layout the hyperparameters imply, the way
 * load_state_dict(strict=True) would, but with errors that name the file, the key and
 * what was expected.
 */
import { JukeboxError } from '../errors.js';
import type { ModelFile } from '../model-file.js';

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
    if (!FLOAT_DTYPES.has(t.dtype)) {
      throw new JukeboxError('ERR_DTYPE', `${file.path}: weight "${key}" has dtype ${t.dtype}; expected F32, F16 or BF16`);
    }
  }
  const extra = [...file.tensors.keys()].filter((k) => !expected.has(k));
  if (extra.length > 0) {
    const shown = extra.slice(0, 5).map((k) => `"${k}"`).join(', ');
    throw new JukeboxError(
      'ERR_UNEXPECTED_KEY',
      `${file.path}: ${extra.length} weight(s) the ${what} hyperparameters do not account for: ${shown}${extra.length > 5 ? ', ...' : ''}; ` +
        `the hyperparameters probably do not match this checkpoint`,
    );
  }
}
