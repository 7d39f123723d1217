/**
 * The page's audio elements in one place: only one plays at a time, and keyboard shortcuts
 * act on the one played last.
 */
const all = new Set<HTMLAudioElement>();
let active: HTMLAudioElement | null = null;

function onPlay(this: HTMLAudioElement) {
  active = this;
  for (const a of all) if (a !== this && !a.paused) a.pause();
}

export function register(a: HTMLAudioElement): () => void {
  all.add(a);
  a.addEventListener('play', onPlay);
  return () => {
    a.removeEventListener('play', onPlay);
    all.delete(a);
    if (active === a) active = null;
  };
}

/** The element played last, if still on the page; else the first one shown. */
export function current(): HTMLAudioElement | null {
  if (active && all.has(active)) return active;
  return (document.querySelector('[data-testid="sample-detail"] audio') as HTMLAudioElement | null) ?? null;
}

export function seekBy(a: HTMLAudioElement, seconds: number): void {
  const d = Number.isFinite(a.duration) ? a.duration : Infinity;
  a.currentTime = Math.max(0, Math.min(d, a.currentTime + seconds));
}

export function toggle(a: HTMLAudioElement): void {
  if (a.paused) void a.play().catch(() => undefined);
  else a.pause();
}
