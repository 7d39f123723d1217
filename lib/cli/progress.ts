/**
 * A progress bar on stderr that only appears once an operation has run for a second (and
 * only on a terminal), so quick commands stay quiet and logs stay clean.
 */
import cliProgress from 'cli-progress';

export interface ProgressBar {
  update(fraction: number): void;
  stop(): void;
}

export function progressBar(label: string, delayMs = 1000): ProgressBar {
  const enabled = process.stderr.isTTY === true && !process.env.CI;
  const started = Date.now();
  let bar: cliProgress.SingleBar | undefined;
  let last = 0;
  return {
    update(fraction: number) {
      last = Math.max(0, Math.min(1, fraction));
      if (!enabled) return;
      if (!bar && Date.now() - started >= delayMs) {
        bar = new cliProgress.SingleBar(
          {
            format: `${label} [{bar}] {percentage}% | {duration_formatted} elapsed, eta {eta_formatted}`,
            stream: process.stderr,
            hideCursor: true,
            etaBuffer: 20,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(1000, 0);
      }
      bar?.update(Math.round(last * 1000));
    },
    stop() {
      if (bar) {
        bar.update(Math.round(last * 1000));
        bar.stop();
      }
    },
  };
}
