/**
 * The explorer page: the catalogue written by the server or the static export
 * (window.__JUKEBOX_CATALOG__, lib/explore/catalog-types.ts), a filterable list, the
 * selected sample, an A/B comparison, and jobs on a live server.
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Catalog, JobInfo } from '../catalog-types.js';
import { Compare, useCompareSwitch } from './compare.js';
import { haystack, sortSamples, title, type SortKey } from './format.js';
import { JobsPanel, useJobs } from './jobs.js';
import { current, seekBy, toggle } from './players.js';
import { PrimeForm } from './prime-form.js';
import { SampleList } from './sample-list.js';
import { SampleView } from './sample-view.js';

declare global {
  interface Window {
    __JUKEBOX_CATALOG__?: Catalog;
  }
}

function hashSample(): string | null {
  const m = /(?:^#|&)sample=([^&]+)/.exec(location.hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

function App({ initial }: { initial: Catalog }) {
  const [catalog, setCatalog] = useState(initial);
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<SortKey>('newest');
  // The sample in the URL's hash (a deep link), else the first one in the list.
  const [selected, setSelected] = useState<string | null>(() => {
    const h = hashSample();
    return h && initial.samples.some((s) => s.id === h) ? h : (sortSamples(initial.samples, 'newest')[0]?.id ?? null);
  });
  const [notice, setNotice] = useState<string | null>(null);
  const [abA, setA] = useState<string | null>(null);
  const [abB, setB] = useState<string | null>(null);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const sw = useCompareSwitch();

  const byId = useMemo(() => new Map(catalog.samples.map((s) => [s.id, s])), [catalog]);
  const shown = useMemo(() => {
    const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
    return sortSamples(
      catalog.samples.filter((s) => words.every((w) => haystack(s).includes(w))),
      sort,
    );
  }, [catalog, filter, sort]);

  const select = (id: string) => {
    setSelected(id);
    history.replaceState(null, '', `#sample=${encodeURIComponent(id)}`);
  };

  const jobs = useJobs(async (job: JobInfo) => {
    try {
      const r = await fetch('catalog.json', { cache: 'no-store' });
      if (!r.ok) throw new Error(`the server answered ${r.status}`);
      setCatalog((await r.json()) as Catalog);
      setFresh((f) => new Set([...f, ...job.sampleIds]));
      setNotice(null);
    } catch (e) {
      setNotice(`The job is done but the list could not be reloaded (${(e as Error).message}): reload the page to see its samples.`);
    }
  }, catalog.live && !!catalog.queue);

  useEffect(() => {
    const onHash = () => {
      const id = hashSample();
      if (id) setSelected(id);
    };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  // Keys: space play/pause, arrows seek, j/k next/previous sample, x A/B switch.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (e.ctrlKey || e.metaKey || e.altKey || t.closest('input, select, textarea')) return;
      const a = current();
      if (e.key === ' ' && !t.closest('button, audio, a')) {
        if (a) toggle(a);
        e.preventDefault();
      } else if (e.key === 'ArrowLeft' && a && !t.closest('audio')) {
        seekBy(a, -5);
        e.preventDefault();
      } else if (e.key === 'ArrowRight' && a && !t.closest('audio')) {
        seekBy(a, 5);
        e.preventDefault();
      } else if (e.key === 'j' || e.key === 'k') {
        const i = shown.findIndex((s) => s.id === selected);
        const next = shown[Math.max(0, Math.min(shown.length - 1, i + (e.key === 'j' ? 1 : -1)))];
        if (next) select(next.id);
      } else if (e.key === 'x') {
        sw.doSwitch();
      } else if (e.key === 'Escape' && (abA || abB)) {
        setA(null);
        setB(null);
      } else if (e.key === '/') {
        const f = document.querySelector('[data-testid="filter"]') as HTMLInputElement | null;
        if (f) {
          f.focus();
          e.preventDefault();
        }
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [shown, selected, abA, abB]);

  const sample = selected ? byId.get(selected) : undefined;
  const a = abA ? byId.get(abA) : undefined;
  const b = abB ? byId.get(abB) : undefined;

  // Docked under the list (or under the empty-folder message), so it never covers a player.
  const jobsPanel = catalog.live ? (
    <JobsPanel
      jobs={jobs.jobs}
      error={jobs.error}
      onCancel={(id) => void jobs.cancel(id)}
      onOpen={select}
      onDismiss={jobs.dismissError}
      onClear={jobs.clearFinished}
      describe={(id) => (byId.get(id) ? title(byId.get(id)!) : id)}
      queue={catalog.queue}
    />
  ) : null;

  return (
    <div class="app">
      <header class="top">
        <h1>Jukebox explorer</h1>
        <span class="muted">{catalog.roots.join(', ')}</span>
        <span class="grow" />
        <span class="muted">{catalog.live ? 'live' : 'static export'} · space play/pause · ←/→ seek · j/k next/previous · x switch A/B</span>
      </header>
      {catalog.problems.length > 0 && (
        <details class="problems">
          <summary>
            {catalog.problems.length} folder{catalog.problems.length === 1 ? '' : 's'} could not be read
          </summary>
          <ul>
            {catalog.problems.map((p) => (
              <li>{p}</li>
            ))}
          </ul>
        </details>
      )}
      {notice && (
        <div class="notice" role="alert">
          {notice}{' '}
          <button class="link" onClick={() => setNotice(null)}>
            dismiss
          </button>
        </div>
      )}
      {catalog.samples.length === 0 ? (
        <div class="empty-page">
          <div class="empty" data-testid="empty">
            <h2>No samples here yet</h2>
            <p>Make a few with</p>
            <pre>
              <code>npx jukebox generate --seconds 10 -o out/</code>
            </pre>
            <p>then listen to them here with</p>
            <pre>
              <code>npx jukebox explore out/</code>
            </pre>
            {catalog.roots.length > 0 && <p class="muted small">Looked in {catalog.roots.join(', ')}.</p>}
          </div>
          {catalog.live && <PrimeForm onJob={jobs.start} />}
          {jobsPanel}
        </div>
      ) : (
        <main class="main">
          <SampleList
            shown={shown}
            total={catalog.samples.length}
            selected={selected}
            filter={filter}
            sort={sort}
            abA={abA}
            abB={abB}
            fresh={fresh}
            onFilter={setFilter}
            onSort={setSort}
            onSelect={select}
            extra={catalog.live ? <PrimeForm onJob={jobs.start} /> : undefined}
            footer={jobsPanel}
            onAB={(slot, id) => (slot === 'a' ? setA(abA === id ? null : id) : setB(abB === id ? null : id))}
          />
          <div class="content">
            {a && b && (
              <Compare
                a={a}
                b={b}
                sw={sw}
                onClose={() => {
                  setA(null);
                  setB(null);
                }}
              />
            )}
            {(a || b) && !(a && b) && <p class="hint muted">Pick {a ? 'B' : 'A'} in the list to compare.</p>}
            {sample ? (
              <SampleView
                key={sample.id}
                sample={sample}
                live={catalog.live}
                isNew={fresh.has(sample.id)}
                parentTitle={sample.parent ? (byId.get(sample.parent.sampleId) ? title(byId.get(sample.parent.sampleId)!) : null) : null}
                onSelect={select}
                onJob={(req) => void jobs.start(req)}
              />
            ) : (
              <p class="muted">Select a sample.</p>
            )}
          </div>
        </main>
      )}
    </div>
  );
}

const root = document.getElementById('app')!;
const catalog = window.__JUKEBOX_CATALOG__;
if (!catalog) {
  root.innerHTML = '<p class="empty">catalog.js is missing: open the page through <code>jukebox explore</code> or from a folder written by <code>jukebox explore --export</code>.</p>';
} else {
  root.textContent = '';
  render(<App initial={catalog} />, root);
}
