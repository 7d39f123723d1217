/**
 * Backend parity: every CUDA kernel against its CPU reference op, op by op, on the device.
 * Without a usable GPU it reports itself skipped and why (the loader's reason). So far the
 * CUDA library has only its self-test kernel (cuda/README.md lists the kernels to come, each
 * of which adds its parity case here: same inputs through native().kernels (CPU, 'ref' and
 * 'fast') and through the CUDA entry, compared within the tolerance written next to it).
 */
import { describe, expect, it } from 'vitest';
import { backendInfo } from '../lib/backend.js';
import { native } from '../lib/native.js';

const info = backendInfo().cuda;
const device = info.devices.find((d) => d.supported);
const skipReason = !info.libraryLoaded
  ? info.reason
  : !device
    ? info.reason ?? 'no supported CUDA device'
    : undefined;
if (skipReason) console.warn(`cuda-parity: skipped: ${skipReason}`);

describe.runIf(skipReason === undefined)(`CUDA backend parity (${device?.name ?? 'no device'})`, () => {
  it('runs the self-test kernel (cuda/common helpers on the device vs the host)', () => {
    expect(native().cudaSelfTest(device!.index)).toMatch(/^self-test kernel ran on device/);
  });
});

describe('CUDA backend parity: skip report', () => {
  it('says why the suite is skipped, or that it ran', () => {
    // Not a check of the machine: documents in the test output what the suite did.
    expect(skipReason === undefined || skipReason.length > 0).toBe(true);
  });
});
