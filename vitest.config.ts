import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native kernels use their own thread pool; one test file at a time keeps the
    // 2-core CI machine from oversubscribing and keeps timings honest.
    fileParallelism: false,
  },
});
