/**
 * Convolutions at dilations near 2^30, where 2 * pad and k * dilation no longer fit an int:
 * the engine does that index arithmetic in 64 bits (it used to overflow, undefined behaviour
 * that happened to give the right answer). With pad = dilation and kernel 3 only the centre
 * tap ever lands inside a short input, so the answer is known exactly; a length that does
 * not fit an int is refused, not wrapped.
 */
import { describe, expect, it } from 'vitest';
import { native, type NativeConvParams } from '../lib/native.js';
import { randn, rng } from './helpers/random.js';

const k = native().kernels;

/** y[b][co][t] = bias[co] + sum_ci w[co][ci][1] * x[b][ci][t] (the centre tap of a (cout, cin, 3) or (cin, cout, 3) weight). */
function centreTap(x: Float32Array, n: number, cin: number, cout: number, tin: number, w: Float32Array, bias: Float32Array, transposed: boolean): Float32Array {
  const y = new Float32Array(n * cout * tin);
  for (let b = 0; b < n; b++)
    for (let co = 0; co < cout; co++)
      for (let t = 0; t < tin; t++) {
        let acc = bias[co]!;
        for (let ci = 0; ci < cin; ci++) {
          const wi = transposed ? (ci * cout + co) * 3 + 1 : (co * cin + ci) * 3 + 1;
          acc += w[wi]! * x[(b * cin + ci) * tin + t]!;
        }
        y[(b * cout + co) * tin + t] = acc;
      }
  return y;
}

describe('convolutions at huge dilations', () => {
  const rand = rng(7);
  const n = 2, cin = 3, cout = 5, tin = 37;
  const x = randn(n * cin * tin, rand);
  const w = randn(cin * cout * 3, rand);
  const bias = randn(cout, rand);

  for (const dilation of [2 ** 29 + 3, 2 ** 30 - 1, 2 ** 30 + 7, 2 ** 31 - 2]) {
    for (const transposed of [false, true]) {
      it(`${transposed ? 'conv_transpose1d' : 'conv1d'} dilation ${dilation} (2 * pad = ${2 * dilation})`, () => {
        const p: NativeConvParams = { cin, cout, kernel: 3, stride: 1, pad: dilation, dilation, transposed };
        const want = centreTap(x, n, cin, cout, tin, w, bias, transposed);
        for (const impl of ['ref', 'fast'] as const) {
          const y = k.conv1d(x, n, tin, w, bias, p, impl);
          expect(y.length, impl).toBe(want.length);
          let worst = 0;
          for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i]! - want[i]!));
          expect(worst, impl).toBeLessThan(1e-5);
        }
      });
    }
  }

  it('an output length beyond an int is refused with an error, not wrapped', () => {
    // (tin - 1) * stride + dilation * (kernel - 1) + 1 > 2^31 for a transposed conv
    const p: NativeConvParams = { cin, cout, kernel: 3, stride: 1, pad: 0, dilation: 2 ** 30 + 7, transposed: true };
    let err: unknown;
    try {
      k.conv1d(x, n, tin, w, bias, p, 'fast');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('ERR_INVALID_ARGUMENT');
    expect((err as Error).message).toMatch(/out of range/);
  });
});
