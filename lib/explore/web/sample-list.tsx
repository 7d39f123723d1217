/** The list of samples: filter, sort, select, and mark two for A/B comparison. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { SampleEntry } from '../catalog-types.js';
import { excerpt, mmss, settingsSummary, SORTS, title, whenShort, type SortKey } from './format.js';

export interface SampleListProps {
  shown: SampleEntry[];
  total: number;
  selected: string | null;
  filter: string;
  sort: SortKey;
  abA: string | null;
  abB: string | null;
  fresh: Set<string>;
  onFilter: (f: string) => void;
  onSort: (s: SortKey) => void;
  onSelect: (id: string) => void;
  onAB: (slot: 'a' | 'b', id: string) => void;
  /** Shown above the list (the "own audio" form on a live server). */
  extra?: ComponentChildren;
  /** Shown under the list (the jobs on a live server). */
  footer?: ComponentChildren;
}

export function SampleList(p: SampleListProps) {
  const list = useRef<HTMLUListElement>(null);
  // Keep the selected row in view (j/k, deep links, "open the new sample").
  useEffect(() => {
    const row = list.current?.querySelector('.row.selected') as HTMLElement | null;
    row?.scrollIntoView({ block: 'nearest' });
  }, [p.selected, p.shown]);

  return (
    <nav class="list" aria-label="samples">
      <div class="list-tools">
        <label class="grow">
          <span class="sr-only">Filter the samples</span>
          <input
            type="search"
            placeholder="Filter: artist, genre, lyrics, model, seed  ( / )"
            value={p.filter}
            onInput={(e) => p.onFilter((e.target as HTMLInputElement).value)}
            onKeyDown={(e) => e.key === 'Escape' && p.onFilter('')}
            data-testid="filter"
          />
        </label>
        <label>
          <span class="sr-only">Sort by</span>
          <select value={p.sort} onChange={(e) => p.onSort((e.target as HTMLSelectElement).value as SortKey)} data-testid="sort">
            {SORTS.map(([k, label]) => (
              <option value={k}>{label}</option>
            ))}
          </select>
        </label>
      </div>
      {p.extra}
      <div class="count muted" data-testid="sample-count" aria-live="polite">
        {p.shown.length === p.total ? `${p.total} sample${p.total === 1 ? '' : 's'}` : `${p.shown.length} of ${p.total} samples`}
      </div>
      {p.shown.length === 0 && p.total > 0 && (
        <p class="none muted">
          No sample matches “{p.filter}”.{' '}
          <button class="link" onClick={() => p.onFilter('')}>
            Clear the filter
          </button>
        </p>
      )}
      <ul role="listbox" aria-label="samples" ref={list}>
        {p.shown.map((s) => (
          <li
            key={s.id}
            role="option"
            aria-selected={s.id === p.selected ? 'true' : 'false'}
            class={`row${s.id === p.selected ? ' selected' : ''}${p.fresh.has(s.id) ? ' fresh' : ''}`}
            data-testid="sample-row"
            data-sample-id={s.id}
            tabIndex={0}
            onClick={() => p.onSelect(s.id)}
            onKeyDown={(e) => {
              // Enter selects; space stays the page's play/pause.
              if (e.target === e.currentTarget && e.key === 'Enter') p.onSelect(s.id);
            }}
          >
            <div class="row-top">
              <strong title={title(s)}>{title(s)}</strong>
              {p.fresh.has(s.id) && <span class="badge new">new</span>}
              {s.parent && <span class="badge">{s.parent.action === 'continue' ? 'continued' : 'upsampled'}</span>}
              {s.settings.primedSeconds > 0 && !s.parent && <span class="badge">primed</span>}
              <span class="ab">
                <button class={p.abA === s.id ? 'on' : ''} aria-pressed={p.abA === s.id} aria-label={`compare ${title(s)} as A`} title="compare as A" data-testid="ab-a" onClick={(e) => (e.stopPropagation(), p.onAB('a', s.id))}>
                  A
                </button>
                <button class={p.abB === s.id ? 'on' : ''} aria-pressed={p.abB === s.id} aria-label={`compare ${title(s)} as B`} title="compare as B" data-testid="ab-b" onClick={(e) => (e.stopPropagation(), p.onAB('b', s.id))}>
                  B
                </button>
              </span>
            </div>
            {s.lyrics && <div class="row-lyrics">“{excerpt(s.lyrics)}”</div>}
            <div class="row-meta">
              <span class="dur">{mmss(s.duration)}</span> · seed {s.seed}
              {s.settings.samples > 1 ? ` · ${s.index + 1} of ${s.settings.samples}` : ''} · <span title={s.model}>{s.model}</span>
            </div>
            <div class="row-meta muted">
              {settingsSummary(s)} · <span title={new Date(s.createdAt).toLocaleString()}>{whenShort(s.createdAt)}</span>
            </div>
          </li>
        ))}
      </ul>
      {p.footer}
    </nav>
  );
}
