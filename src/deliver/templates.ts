import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Handlebars from 'handlebars';
import { srcAsset } from '../paths.js';
import { templateContext } from './context.js';
import type { WebhookEvent } from './events.js';
import { sampleEvents } from './samples.js';

/** A template that cannot be used; the message names the file and the handlebars error. */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

/** The payload shapes faultline ships (`src/deliver/templates/<name>.hbs`). */
export const BUILTIN_TEMPLATES = ['generic', 'slack', 'pagerduty', 'alertmanager'] as const;

export interface RenderedBody {
  body: string;
  contentType: string;
}

/** A compiled template: renders one event for one endpoint. Throws TemplateError when rendering fails. */
export interface Template {
  readonly name: string;
  readonly file: string;
  render(ev: WebhookEvent, routingKey?: string): RenderedBody;
}

// Payloads are JSON or text, never HTML: no HTML escaping (noEscape), and `json` writes a JSON value.
const hb = Handlebars.create();
hb.registerHelper('json', (v: unknown) => JSON.stringify(isOptions(v) || v === undefined ? null : v));
hb.registerHelper('truncate', (v: unknown, n: unknown) => {
  const s = typeof v === 'string' ? v : v === undefined || v === null || isOptions(v) ? '' : String(v);
  const max = Number(n);
  return Number.isFinite(max) && s.length > max ? `${s.slice(0, Math.max(0, max - 1))}…` : s;
});
hb.registerHelper('concat', (...args: unknown[]) => args.slice(0, -1).map((a) => (a === undefined || a === null ? '' : String(a))).join(''));
hb.registerHelper('or', (...args: unknown[]) => args.slice(0, -1).find((a) => a) ?? '');
hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
// Slack mrkdwn: &, < and > are control characters there.
hb.registerHelper('slack', (v: unknown) => (typeof v === 'string' ? v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;') : ''));

function isOptions(v: unknown): boolean {
  // Handlebars passes its options object last: `{{json missing}}` must write null, not the options.
  return typeof v === 'object' && v !== null && 'hash' in v && 'loc' in v && 'lookupProperty' in v;
}

function oneLine(err: unknown): string {
  const lines = String((err as Error)?.message ?? err).split('\n').filter((l) => l.trim() && !/^[-\s]*\^$/.test(l) && !/^\.\.\./.test(l));
  return lines.map((l) => l.trim()).join(' ');
}

/**
 * Reads and compiles a template, then renders it against a sample event of every type: a broken template
 * (syntax, an unknown helper, JSON that does not parse) fails here, when the configuration loads.
 */
export function compileTemplate(name: string, file: string): Template {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TemplateError(`template "${name}": cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let fn: HandlebarsTemplateDelegate;
  try {
    fn = hb.compile(source, { noEscape: true, strict: false });
  } catch (err) {
    throw new TemplateError(`template "${name}" (${file}): ${oneLine(err)}`);
  }
  const template: Template = {
    name,
    file,
    render(ev, routingKey = '') {
      let out: string;
      try {
        out = fn(templateContext(ev, routingKey), { allowProtoPropertiesByDefault: false });
      } catch (err) {
        throw new TemplateError(`template "${name}" (${file}): ${oneLine(err)}`);
      }
      const trimmed = out.trim();
      // A body that looks like JSON must be JSON; it is sent compact.
      if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
        try {
          return { body: JSON.stringify(JSON.parse(trimmed)), contentType: 'application/json' };
        } catch (err) {
          throw new TemplateError(`template "${name}" (${file}) rendered invalid JSON for a ${ev.type} event: ${(err as Error).message}`);
        }
      }
      return { body: out, contentType: 'text/plain; charset=utf-8' };
    },
  };
  for (const ev of sampleEvents()) template.render(ev, 'sample-routing-key');
  return template;
}

let builtins: Map<string, Template> | undefined;

/** The built-in templates, compiled once per process. */
export function builtinTemplates(): Map<string, Template> {
  builtins ??= new Map(BUILTIN_TEMPLATES.map((n) => [n, compileTemplate(n, srcAsset('deliver', 'templates', `${n}.hbs`))]));
  return builtins;
}

/** Built-in and user templates by name; user paths are read relative to the working directory. Throws TemplateError. */
export function loadTemplates(user: Record<string, string>): Map<string, Template> {
  const all = new Map(builtinTemplates());
  for (const [name, path] of Object.entries(user)) all.set(name, compileTemplate(name, resolve(path)));
  return all;
}
