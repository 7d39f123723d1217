// The memory bandwidth the decode benchmarks measure their streams against
// (bench/prior-bench.mjs, bench/linear-bench.mjs), measured in the same run: memcpy of 256
// MB on all the pool's threads (kernels.memBandwidth, csrc/cpu/mem_bandwidth.cc), and the
// one-thread JavaScript copy these benchmarks used before, which on a multi-core machine
// reaches only part of it. The reference is the larger of the two, so a share of it is
// never flattered by a slow measurement.
import { performance } from 'node:perf_hooks';

function jsCopyGBs() {
  const a = new Float64Array((256 << 20) >> 3), b = new Float64Array((256 << 20) >> 3);
  a.fill(1);
  b.set(a);
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    b.set(a);
    best = Math.max(best, (2 * a.byteLength) / ((performance.now() - t0) / 1000) / 1e9);
  }
  return best;
}

/** { copy: the reference (GB/s, read + write), native, read, js, threads, line: a description } */
export function measureBandwidth(kernels) {
  const m = kernels.memBandwidth(256);
  const js = jsCopyGBs();
  const copy = Math.max(m.copyGBs, js);
  const line = `memory copy bandwidth measured now: ${copy.toFixed(1)} GB/s (memcpy on ${m.threads} threads ${m.copyGBs.toFixed(1)}, streaming read ${m.readGBs.toFixed(1)}, one JS thread's copy ${js.toFixed(1)})`;
  return { copy, native: m.copyGBs, read: m.readGBs, js, threads: m.threads, line };
}
