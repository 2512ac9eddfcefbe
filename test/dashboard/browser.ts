import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { packageRoot } from '../../src/paths.js';
import { removeDir, tempDir } from '../support/faultline.js';

/** Where the browser tests leave their screenshots (git-ignored): look at them after a run. */
export const ARTIFACTS = join(packageRoot, 'test', 'artifacts');

/** The Chromium the tests drive: Debian's (`apt-get install chromium`, see .ci/run), or FAULTLINE_CHROMIUM. */
export const CHROMIUM = process.env.FAULTLINE_CHROMIUM ?? '/usr/bin/chromium';

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile and nothing that talks to the network by itself. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install it (apt-get install -y chromium) or set FAULTLINE_CHROMIUM`);
  const profile = tempDir('faultline-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      removeDir(profile);
    },
  };
}

/** Saves a full-page screenshot as test/artifacts/<name>.png, at the page's width or the one given. */
export async function screenshot(page: Page, name: string, width?: number): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const before = page.viewportSize();
  if (width && before) await page.setViewportSize({ width, height: before.height });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  if (width && before) await page.setViewportSize(before);
}

/** Fails the test on any script error or failed request of the dashboard (a broken asset shows here). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/the server responded with a status of (4\d\d)/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => {
    // An event stream is cut when the page navigates or closes; that is not a failure.
    if (!r.url().endsWith('/events')) errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`);
  });
  return errors;
}

/** Form controls a screen reader could not name (no label, aria-label or title): should be none. */
export function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
      .filter((el) => {
        const e = el as HTMLInputElement;
        const labelled = (e.labels && e.labels.length > 0) || e.getAttribute('aria-label') || e.title;
        return !labelled && !(el.tagName === 'BUTTON' && el.textContent?.trim());
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}
