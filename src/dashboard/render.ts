import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import Handlebars from 'handlebars';
import { packageRoot } from '../paths.js';
import { formatBytes, formatDuration } from '../rules/index.js';

/** dashboards/: the page templates, partials and static assets (CSS, client JS) the server renders and serves. */
export const DASHBOARDS_DIR = join(packageRoot, 'dashboards');

/** What the layout needs besides the page: title, the nav entry to highlight, a flash message. */
export interface PageMeta {
  title: string;
  nav: string;
  flash?: { kind: 'ok' | 'error'; text: string };
  /** Whether the viewer is logged in with a cookie (shows "Log out"). */
  loggedIn?: boolean;
  /** Filled in by render(). */
  assetVersion?: string;
}

const NAV = [
  { key: 'overview', href: '/', label: 'Overview' },
  { key: 'faults', href: '/faults', label: 'Faults' },
  { key: 'supervision', href: '/supervision', label: 'Supervision' },
  { key: 'checks', href: '/checks', label: 'Checks' },
  { key: 'silences', href: '/silences', label: 'Silences' },
  { key: 'deliveries', href: '/deliveries', label: 'Deliveries' },
  { key: 'rules', href: '/rules', label: 'Rules' },
  { key: 'cluster', href: '/cluster', label: 'Cluster' },
];

/**
 * The dashboard's handlebars environment: the layout, every page under dashboards/pages and every partial
 * under dashboards/partials, compiled once at start (a broken template fails start-up, not a page view).
 */
export class Views {
  private readonly hb = Handlebars.create();
  private readonly layout: HandlebarsTemplateDelegate;
  private readonly pages = new Map<string, HandlebarsTemplateDelegate>();

  constructor(
    private readonly assetVersion: string,
    dir = DASHBOARDS_DIR,
  ) {
    registerHelpers(this.hb);
    for (const f of readdirSync(join(dir, 'partials')).filter((f) => f.endsWith('.hbs')))
      this.hb.registerPartial(basename(f, '.hbs'), readFileSync(join(dir, 'partials', f), 'utf8'));
    for (const f of readdirSync(join(dir, 'pages')).filter((f) => f.endsWith('.hbs')))
      this.pages.set(basename(f, '.hbs'), this.compile(join(dir, 'pages', f)));
    this.layout = this.compile(join(dir, 'layout.hbs'));
  }

  private compile(file: string): HandlebarsTemplateDelegate {
    const t = this.hb.compile(readFileSync(file, 'utf8'), { strict: false, preventIndent: true });
    // Compile now, not at the first render.
    t({});
    return t;
  }

  render(page: string, meta: PageMeta, model: object): string {
    const template = this.pages.get(page);
    if (!template) throw new Error(`no dashboard page template "${page}"`);
    const body = template(model);
    const nav = NAV.map((n) => ({ ...n, current: n.key === meta.nav }));
    return this.layout({ ...meta, nav, body, assetVersion: this.assetVersion });
  }
}

function registerHelpers(hb: typeof Handlebars): void {
  const esc = hb.Utils.escapeExpression;
  /** A time the client script shows in the viewer's zone; the server's text (UTC) is the fallback. */
  hb.registerHelper('time', (iso: unknown) => {
    if (typeof iso !== 'string' || !iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return esc(iso);
    const utc = `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
    return new hb.SafeString(`<time datetime="${esc(d.toISOString())}" title="${utc}">${utc}</time>`);
  });
  /** A relative age ("3 min ago"), kept fresh by the client script. */
  hb.registerHelper('ago', (iso: unknown) => {
    if (typeof iso !== 'string' || !iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return esc(iso);
    return new hb.SafeString(`<time class="ago" datetime="${esc(d.toISOString())}" data-ago>${esc(relative(Date.now() - d.getTime()))}</time>`);
  });
  hb.registerHelper('duration', (ms: unknown) => (ms === null || ms === undefined || ms === '' ? '—' : formatDuration(Number(ms))));
  hb.registerHelper('bytes', (n: unknown) => (n === null || n === undefined || n === '' ? '—' : formatBytes(Number(n))));
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('or', (...args: unknown[]) => args.slice(0, -1).some(Boolean));
  hb.registerHelper('json', (v: unknown) => JSON.stringify(v, null, 2));
  hb.registerHelper('join', (v: unknown, sep: unknown) => (Array.isArray(v) ? v.join(typeof sep === 'string' ? sep : ', ') : ''));
  hb.registerHelper('plural', (n: unknown, one: string, many: string) => `${Number(n)} ${Number(n) === 1 ? one : many}`);
  /** The display name of a kind ("crash_loop" → "crash loop"). */
  hb.registerHelper('words', (v: unknown) => String(v ?? '').replace(/_/g, ' '));
}

/** A short relative age, as the client script writes it too. */
export function relative(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  const text = s < 45 ? `${s} s` : s < 2700 ? `${Math.round(s / 60)} min` : s < 64_800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86_400)} d`;
  return ms >= 0 ? `${text} ago` : `in ${text}`;
}
