/**
 * The explorer page end to end in real headless Chromium (Debian's chromium driven by
 * playwright-core): listing and filtering, playback, click-to-seek, the lyrics highlight
 * following the alignment, A/B comparison, an upsample job with progress and its result in
 * the list, cancelling a job, the static export opened from disk, and that pages or scripts
 * planted in an explored folder never run with the page's rights. Screenshots go to
 * test-output/explore/. Without a chromium binary the suite says it is skipped and why.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExploreServer, type ExploreServer } from '../lib/explore/server.js';
import { exportSite } from '../lib/explore/export.js';
import type { Catalog } from '../lib/explore/catalog-types.js';
import { repoRoot } from './helpers/fixtures.js';
import { makeExploreRuns, type ExploreRuns } from './helpers/explore-runs.js';

const CHROMIUM = process.env.JUKEBOX_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`explore-browser: skipped: no chromium at ${CHROMIUM} (apt-get install chromium, or set JUKEBOX_CHROMIUM)`);

const shots = join(repoRoot, 'test-output', 'explore');
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-explore-ui-'));
let runs: ExploreRuns;
let srv: ExploreServer;
let browser: Browser;

describe.skipIf(!haveChromium)('explorer page in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    runs = await makeExploreRuns(tmp);
    srv = await startExploreServer({ dirs: [runs.root] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await srv?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  async function open(url = srv.url): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    (page as Page & { errors: string[] }).errors = errors;
    await page.goto(url);
    await page.getByTestId('sample-row').first().waitFor();
    return page;
  }

  const catalogOf = (page: Page) => page.evaluate(() => (window as unknown as { __JUKEBOX_CATALOG__: Catalog }).__JUKEBOX_CATALOG__);
  const lyricSample = (c: Catalog) => c.samples.find((s) => s.alignment && s.index === 0)!;

  async function select(page: Page, id: string) {
    await page.locator(`[data-testid="sample-row"][data-sample-id="${id}"]`).click();
    await page.locator(`[data-testid="sample-detail"][data-sample-id="${id}"]`).waitFor();
  }

  it('lists the samples of the output folders, filters and sorts them', async () => {
    const page = await open();
    await expect.poll(() => page.getByTestId('sample-row').count()).toBe(3);
    const rows = await page.getByTestId('sample-row').allTextContents();
    expect(rows.join('\n')).toContain('The Testers');
    expect(rows.join('\n')).toContain('Hello darkness');
    await page.getByTestId('filter').fill('rock');
    await expect.poll(() => page.getByTestId('sample-row').count()).toBe(1);
    await page.getByTestId('filter').fill('');
    await page.getByTestId('sort').selectOption({ index: 1 });
    await expect.poll(() => page.getByTestId('sample-row').count()).toBe(3);
    await page.screenshot({ path: join(shots, 'list.png'), fullPage: true });
    expect((page as Page & { errors: string[] }).errors).toEqual([]);
    await page.close();
  });

  it('plays a level: currentTime advances and the playhead moves', async () => {
    const page = await open();
    const s = lyricSample(await catalogOf(page));
    await select(page, s.id);
    const audio = page.getByTestId('audio-1');
    await audio.evaluate((a: HTMLAudioElement) => a.play());
    await expect.poll(() => audio.evaluate((a: HTMLAudioElement) => a.currentTime), { timeout: 10_000 }).toBeGreaterThan(0.2);
    const left = await page.getByTestId('playhead-1').evaluate((e) => (e as HTMLElement).getBoundingClientRect().left);
    const wave = await page.getByTestId('waveform-1').boundingBox();
    expect(left).toBeGreaterThan(wave!.x + 1);
    await page.screenshot({ path: join(shots, 'playing.png'), fullPage: true });
    await page.close();
  });

  it('seeks where the waveform or spectrogram is clicked', async () => {
    const page = await open();
    const s = lyricSample(await catalogOf(page));
    await select(page, s.id);
    const audio = page.getByTestId('audio-2');
    await audio.evaluate((a: HTMLAudioElement) => a.pause());
    const box = (await page.getByTestId('waveform-2').boundingBox())!;
    await page.mouse.click(box.x + box.width * 0.5, box.y + box.height / 2);
    await expect.poll(() => audio.evaluate((a: HTMLAudioElement) => a.currentTime)).toBeCloseTo(s.duration * 0.5, 1);
    const spec = (await page.getByTestId('spectrogram-2').boundingBox())!;
    await page.mouse.click(spec.x + spec.width * 0.25, spec.y + spec.height / 2);
    await expect.poll(() => audio.evaluate((a: HTMLAudioElement) => a.currentTime)).toBeCloseTo(s.duration * 0.25, 1);
    await page.close();
  });

  it('highlights the lyrics the alignment points at while playing', async () => {
    const page = await open();
    const s = lyricSample(await catalogOf(page));
    const a = s.alignment!;
    await select(page, s.id);
    await page.getByTestId('heatmap').waitFor();
    const audio = page.getByTestId('audio-1');
    await audio.evaluate((el: HTMLAudioElement) => el.play());
    const current = page.locator('[data-testid="lyric-word"].current');
    await current.first().waitFor({ timeout: 10_000 });
    // The highlighted word holds the character the alignment focuses on near the playing time.
    const { text, time } = await page.evaluate(() => ({
      text: document.querySelector('[data-testid="lyric-word"].current')!.textContent!,
      time: (document.querySelector('[data-testid="audio-1"]') as HTMLAudioElement).currentTime,
    }));
    expect(await current.getAttribute('aria-current')).toBe('true');
    const near: string[] = [];
    for (let t = Math.max(0, time - 0.4); t <= time + 0.1; t += 1 / a.tokensPerSecond) {
      const f = a.focus[Math.min(a.focus.length - 1, Math.floor(t * a.tokensPerSecond))];
      if (f < 0) continue;
      const start = a.text.slice(0, f + 1).search(/\S+\s*$/);
      near.push(a.text.slice(start).split(/\s/)[0]);
    }
    expect(near).toContain(text.trim());
    await page.screenshot({ path: join(shots, 'lyrics.png'), fullPage: true });
    await page.close();
  });

  it('compares two samples side by side and switches between them at the same time', async () => {
    const page = await open();
    const rows = page.getByTestId('sample-row');
    await rows.nth(0).getByTestId('ab-a').click();
    await rows.nth(1).getByTestId('ab-b').click();
    const panel = page.getByTestId('compare');
    await panel.waitFor();
    const audios = panel.locator('audio');
    expect(await audios.count()).toBe(2);
    await audios.nth(0).evaluate((a: HTMLAudioElement) => {
      a.currentTime = 0.6;
      return a.play();
    });
    await page.getByTestId('compare-switch').click();
    await expect.poll(() => audios.nth(1).evaluate((a: HTMLAudioElement) => !a.paused)).toBe(true);
    expect(await audios.nth(0).evaluate((a: HTMLAudioElement) => a.paused)).toBe(true);
    expect(await audios.nth(1).evaluate((a: HTMLAudioElement) => a.currentTime)).toBeGreaterThan(0.5);
    await page.screenshot({ path: join(shots, 'compare.png'), fullPage: true });
    await page.getByTestId('compare-close').click();
    await expect.poll(() => panel.count()).toBe(0);
    await page.close();
  });

  it('starts an upsample job, shows its progress, then the new sample in the list', async () => {
    const page = await open();
    const c = await catalogOf(page);
    const parent = c.samples.find((s) => s.canUpsample)!;
    await select(page, parent.id);
    const before = await page.getByTestId('sample-row').count();
    await page.getByTestId('upsample').click();
    const job = page.getByTestId('job').last();
    await job.waitFor();
    const seen = new Set<string>();
    const fractions: number[] = [];
    for (let i = 0; i < 600; i++) {
      const state = (await job.getAttribute('data-state'))!;
      seen.add(state);
      fractions.push(await page.getByTestId('job-progress').last().evaluate((p: HTMLProgressElement) => p.value));
      if (state === 'done' || state === 'failed') break;
      await page.waitForTimeout(50);
    }
    expect(await job.getAttribute('data-state'), await page.getByTestId('job-message').last().textContent() ?? '').toBe('done');
    expect(seen.has('running') || seen.has('queued')).toBe(true);
    expect(Math.max(...fractions)).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('sample-row').count()).toBe(before + 1);
    await page.screenshot({ path: join(shots, 'job-done.png'), fullPage: true });
    await page.getByTestId('job-open').last().click();
    const detail = page.getByTestId('sample-detail');
    const newId = await detail.getAttribute('data-sample-id');
    expect(newId).not.toBe(parent.id);
    expect(await page.getByTestId('level-1').count()).toBe(1);
    await page.close();
  });

  it('cancels a job from the page', async () => {
    const page = await open();
    const s = lyricSample(await catalogOf(page));
    await select(page, s.id);
    await page.getByTestId('continue-from').fill('0.5');
    await page.getByTestId('continue-seconds').fill('300');
    await page.getByTestId('continue').click();
    const job = page.getByTestId('job').last();
    await expect.poll(() => job.getAttribute('data-state'), { timeout: 20_000 }).toBe('running');
    await page.getByTestId('job-cancel').last().click();
    await expect.poll(() => job.getAttribute('data-state'), { timeout: 20_000 }).toBe('cancelled');
    await page.screenshot({ path: join(shots, 'job-cancelled.png'), fullPage: true });
    await page.close();
  });

  it('uploads your own audio and continues it as a new song', async () => {
    const page = await open();
    const before = await page.getByTestId('sample-row').count();
    await page.locator('.prime summary').click();
    await page.getByTestId('prime-file').setInputFiles(join(runs.withLyrics, 'sample_0.wav'));
    await page.getByTestId('prime-from').fill('0.6');
    await page.getByTestId('prime-seconds').fill('2');
    await page.getByTestId('prime-artist').fill('The Testers');
    await page.getByTestId('prime-genre').fill('blues');
    await page.getByTestId('prime-start').click();
    const job = page.getByTestId('job').last();
    await expect.poll(() => job.getAttribute('data-state'), { timeout: 60_000 }).toBe('done');
    await expect.poll(() => page.getByTestId('sample-row').count()).toBe(before + 1);
    await page.getByTestId('job-open').last().click();
    await expect.poll(() => page.getByTestId('sample-detail').textContent()).toMatch(/primed with 0\.6 s/);
    await page.screenshot({ path: join(shots, 'prime.png'), fullPage: true });
    await page.close();
  });

  it('runs no script from pages or scripts planted in an explored folder', async () => {
    // A shared run folder with a page and scripts in it. Were they served as what they are,
    // the script would run with the explorer's rights: retitle the page, write its storage,
    // and start a job through the same-origin POST check.
    const dir = join(runs.root, 'planted');
    mkdirSync(dir, { recursive: true });
    const target = srv.catalog().samples.find((s) => s.canUpsample)!;
    const evil = [
      `document.title = 'pwned';`,
      `try { localStorage.setItem('pwned', '1'); top.document.title = 'pwned'; } catch (e) {}`,
      `fetch('/api/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'upsample', sampleId: ${JSON.stringify(target.id)} }) });`,
    ].join('\n');
    const files: Record<string, string> = {
      'evil.js': evil,
      'evil.mjs': evil,
      'app.js': evil,
      'evil.html': '<!doctype html><title>planted</title><script src="evil.js"></script>',
      'evil.htm': '<!doctype html><title>planted</title><script src="evil.js"></script>',
      'index.html': '<!doctype html><title>planted</title><script src="app.js"></script>',
      'evil.xhtml': '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>planted</title><script src="evil.js"/></head></html>',
      'evil.svg': '<svg xmlns="http://www.w3.org/2000/svg"><script href="evil.js"/></svg>',
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const jobsBefore = ((await (await fetch(`${srv.url}api/jobs`)).json()) as unknown[]).length;

    // 1. Opened directly (a link in a chat, say): each is a download, nothing renders.
    const context = await browser.newContext({ acceptDownloads: true });
    const requests: string[] = [];
    const visit = await context.newPage();
    visit.on('request', (r) => requests.push(`${r.method()} ${r.url()}`));
    const visited: string[] = [];
    for (const name of Object.keys(files)) {
      const url = `${srv.url}files/0/planted/${name}`;
      visited.push(`GET ${url}`);
      const download = visit.waitForEvent('download', { timeout: 15_000 });
      // Chromium reports a navigation that turns into a download as a failed navigation.
      await visit.goto(url).catch(() => undefined);
      expect((await download).suggestedFilename()).toBe(name);
      expect(await visit.title()).not.toBe('pwned');
    }
    // Nothing but the navigations themselves: no page loaded its script, none posted a job.
    expect(requests.filter((r) => !visited.includes(r))).toEqual([]);
    await context.close();

    // 2. Pulled into the explorer page itself (as injected markup would): the browser refuses
    // to run a download-typed file as a script (nosniff), classic, module or in a frame.
    const page = await open();
    const title = await page.title();
    const outcome = await page.evaluate(async () => {
      const load = (el: HTMLScriptElement | HTMLIFrameElement) =>
        new Promise<string>((resolve) => {
          el.onload = () => resolve('load');
          el.onerror = () => resolve('error');
          document.body.append(el);
        });
      const classic = document.createElement('script');
      classic.src = 'files/0/planted/evil.js';
      const module = document.createElement('script');
      module.type = 'module';
      module.src = 'files/0/planted/evil.mjs';
      const frame = document.createElement('iframe');
      frame.src = 'files/0/planted/evil.html';
      return { classic: await load(classic), module: await load(module), frame: await Promise.race([load(frame), new Promise((r) => setTimeout(() => r('none'), 1500))]) };
    });
    expect(outcome.classic).toBe('error');
    expect(outcome.module).toBe('error');
    await page.waitForTimeout(500);
    expect(await page.title()).toBe(title);
    expect(await page.evaluate(() => localStorage.getItem('pwned'))).toBeNull();
    const jobsAfter = ((await (await fetch(`${srv.url}api/jobs`)).json()) as unknown[]).length;
    expect(jobsAfter).toBe(jobsBefore);
    await page.close();
  });

  it('works as a static export opened from disk', async () => {
    const out = join(tmp, 'site');
    await exportSite({ dirs: [runs.root], out });
    const page = await open(pathToFileURL(join(out, 'index.html')).href);
    const n = (await catalogOf(page)).samples.length;
    await expect.poll(() => page.getByTestId('sample-row').count()).toBe(n);
    expect(await page.getByTestId('continue').count()).toBe(0);
    expect(await page.getByTestId('upsample').count()).toBe(0);
    const audio = page.locator('[data-testid^="audio-"]').first();
    await audio.evaluate((a: HTMLAudioElement) => a.play());
    await expect.poll(() => audio.evaluate((a: HTMLAudioElement) => a.currentTime), { timeout: 10_000 }).toBeGreaterThan(0.1);
    const img = page.locator('[data-testid^="spectrogram-"]').first();
    await expect.poll(() => img.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth)).toBeGreaterThan(0);
    await page.screenshot({ path: join(shots, 'static-export.png'), fullPage: true });
    expect((page as Page & { errors: string[] }).errors).toEqual([]);
    await page.close();
  });
});
