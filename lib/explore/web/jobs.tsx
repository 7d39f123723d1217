/**
 * Continue / upsample jobs on a live server: start one (POST api/jobs), follow it over
 * server-sent events, cancel it, and re-read the catalogue when it is done so its samples
 * appear in the list.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { JobInfo, JobRequest } from '../catalog-types.js';

export interface Jobs {
  jobs: JobInfo[];
  error: string | null;
  start(req: JobRequest): Promise<void>;
  cancel(id: string): Promise<void>;
  dismissError(): void;
  /** Forgets the finished jobs (the panel closes when none is left). */
  clearFinished(): void;
}

const FINAL = new Set(['done', 'failed', 'cancelled']);

/** How often a server on a job queue is asked for the queue's jobs (others' too). */
const QUEUE_POLL_MS = 2000;

export function useJobs(onDone: (job: JobInfo) => void, onQueue = false): Jobs {
  const [jobs, setJobs] = useState<JobInfo[]>([]);
  const [error, setError] = useState<string | null>(null);
  const sources = useRef(new Map<string, EventSource>());
  const onDoneRef = useRef(onDone);
  onDoneRef.current = onDone;
  /** Jobs cleared from the panel (a poll must not bring them back). */
  const cleared = useRef(new Set<string>());

  const put = (j: JobInfo) => setJobs((list) => (list.some((x) => x.id === j.id) ? list.map((x) => (x.id === j.id ? j : x)) : [...list, j]));

  // On a job queue (jukebox explore --redis) the server also lists others' jobs: poll it.
  useEffect(() => {
    if (!onQueue) return;
    let stopped = false;
    const known = new Map<string, string>();
    const tick = async () => {
      try {
        const r = await fetch('api/jobs', { cache: 'no-store' });
        if (r.ok) {
          for (const j of (await r.json()) as JobInfo[]) {
            if (cleared.current.has(j.id) || sources.current.has(j.id)) continue;
            const before = known.get(j.id);
            if (before === undefined && FINAL.has(j.state)) continue; // finished before this page saw it
            known.set(j.id, j.state);
            put(j);
            if (j.state === 'done' && before !== 'done') onDoneRef.current(j);
          }
        }
      } catch {
        /* the next tick tries again */
      }
      if (!stopped) timer = setTimeout(tick, QUEUE_POLL_MS);
    };
    let timer = setTimeout(tick, 0);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [onQueue]);

  const follow = (id: string) => {
    const es = new EventSource(`api/jobs/${encodeURIComponent(id)}/events`);
    sources.current.set(id, es);
    es.addEventListener('job', (e) => {
      const j = JSON.parse((e as MessageEvent<string>).data) as JobInfo;
      put(j);
      if (FINAL.has(j.state)) {
        es.close();
        sources.current.delete(id);
        if (j.state === 'done') onDoneRef.current(j);
      }
    });
    // The browser retries a dropped stream by itself; a job that is gone closes it.
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED || !sources.current.has(id)) return;
      sources.current.delete(id);
      setError('Lost contact with the server while following a job: reload the page to see where it is.');
    };
  };

  useEffect(() => () => sources.current.forEach((es) => es.close()), []);

  const start = useCallback(async (req: JobRequest) => {
    setError(null);
    try {
      const r = await fetch('api/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(req) });
      const body = (await r.json().catch(() => ({}))) as JobInfo & { error?: string };
      if (!r.ok) throw new Error(body.error ?? `the server answered ${r.status}`);
      put(body);
      follow(body.id);
    } catch (e) {
      setError(`Could not start the job: ${(e as Error).message}`);
    }
  }, []);

  const cancel = useCallback(async (id: string) => {
    try {
      const r = await fetch(`api/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      if (!r.ok) setError(`Could not cancel: ${((await r.json().catch(() => ({}))) as { error?: string }).error ?? `the server answered ${r.status}`}`);
    } catch (e) {
      setError(`Could not cancel: ${(e as Error).message}`);
    }
  }, []);

  return {
    jobs,
    error,
    start,
    cancel,
    dismissError: () => setError(null),
    clearFinished: () => {
      setJobs((list) => {
        for (const j of list) if (FINAL.has(j.state)) cleared.current.add(j.id);
        return list.filter((j) => !FINAL.has(j.state));
      });
      setError(null);
    },
  };
}

function eta(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '';
  if (s < 60) return `about ${Math.max(1, Math.round(s))} s left`;
  return `about ${Math.round(s / 60)} min left`;
}

export function JobsPanel({ jobs, error, onCancel, onOpen, onDismiss, onClear, describe, queue }: {
  jobs: JobInfo[];
  /** The Redis job queue the jobs run on (jukebox explore --redis). */
  queue?: { name: string; redis: string };
  error: string | null;
  onClear: () => void;
  onCancel: (id: string) => void;
  onOpen: (sampleId: string) => void;
  onDismiss: () => void;
  describe: (sampleId: string) => string;
}) {
  if (jobs.length === 0 && !error) return null;
  return (
    <aside class="jobs" aria-label="jobs">
      <div class="jobs-head">
        <h3>Jobs</h3>
        {queue && (
          <span class="muted" data-testid="jobs-queue">
            {' '}on queue {queue.name}
          </span>
        )}
        {jobs.some((j) => FINAL.has(j.state)) && (
          <button class="link" onClick={onClear} data-testid="jobs-clear">
            clear finished
          </button>
        )}
      </div>
      {error && (
        <div class="job-error" role="alert">
          {error} <button class="link" onClick={onDismiss}>dismiss</button>
        </div>
      )}
      {jobs.map((j) => (
        <div class={`job job-${j.state}`} key={j.id} data-testid="job" data-job-id={j.id} data-state={j.state}>
          <div class="job-title">
            {j.request.action === 'continue'
              ? `Continue from ${j.request.fromSeconds.toFixed(1)} s to ${j.request.seconds} s`
              : j.request.action === 'prime'
                ? `Your audio (first ${j.request.fromSeconds} s) to ${j.request.seconds} s`
                : j.request.action === 'generate'
                  ? `Generate ${j.request.seconds ?? '?'} s${j.queue?.samples && j.queue.samples > 1 ? `, sample ${(j.queue.sample ?? 0) + 1} of ${j.queue.samples}` : ''}`
                  : 'Upsample'}
            {j.request.sampleId && <span class="muted"> · {describe(j.request.sampleId)}</span>}
            {j.queue && (
              <span class="muted" data-testid="job-queue-id">
                {' '}
                · job {j.queue.id}
                {j.queue.starts > 1 ? ` · started ${j.queue.starts} times` : ''}
              </span>
            )}
          </div>
          <progress max={1} value={j.fraction} data-testid="job-progress" />
          <div class="job-line">
            <span data-testid="job-message">{j.state === 'queued' ? 'queued' : j.message}</span>
            {j.state === 'running' && <span class="muted"> {eta(j.etaSeconds)}</span>}
          </div>
          <div class="job-actions">
            {(j.state === 'running' || j.state === 'queued') && (
              <button onClick={() => onCancel(j.id)} data-testid="job-cancel">
                Cancel
              </button>
            )}
            {j.state === 'done' && j.sampleIds.length > 0 && (
              <button class="primary" onClick={() => onOpen(j.sampleIds[0])} data-testid="job-open">
                Open the new sample
              </button>
            )}
          </div>
        </div>
      ))}
    </aside>
  );
}
