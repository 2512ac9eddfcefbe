import { readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import { srcAsset } from '../paths.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const hb = Handlebars.create();
hb.registerHelper('upper', (s: unknown) => String(s).toUpperCase());
let template: HandlebarsTemplateDelegate | undefined;

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
/** Resources people look up most come first; the service's own endpoints last. */
const TAG_ORDER = ['faults', 'signatures', 'targets', 'traces', 'checks', 'supervision', 'silences', 'deliveries', 'rules', 'ping', 'ingest', 'service'];
const rank = (tag: string) => (TAG_ORDER.includes(tag) ? TAG_ORDER.indexOf(tag) : TAG_ORDER.length - 1);

/**
 * The human-readable API reference: one self-contained HTML page (inline CSS, no scripts, no external
 * assets) rendered from the OpenAPI document, so the two never disagree. Grouped by tag.
 */
export function renderDocs(doc: Json): string {
  template ??= hb.compile(readFileSync(srcAsset('api', 'templates', 'docs.html.hbs'), 'utf8'));
  const groups = new Map<string, Json[]>();
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>))
    for (const method of METHODS) {
      const op = item[method] as Json | undefined;
      if (!op) continue;
      const view = {
        method,
        path,
        anchor: op.operationId,
        summary: op.summary,
        description: op.description,
        scope: op['x-faultline-scope'],
        server: item.servers?.[0]?.url,
        parameters: (op.parameters as Json[]).map((p) => ({ ...p, schemaText: schemaText(p.schema) })),
        body: op.requestBody && {
          types: Object.keys(op.requestBody.content),
          description: op.requestBody.description ?? '',
          schema: Object.values(op.requestBody.content as Record<string, Json>).map((c) => (c.schema ? JSON.stringify(c.schema, null, 2) : ''))[0],
        },
        responses: Object.entries(op.responses as Record<string, Json>).map(([status, r]) => {
          const schema = Object.values((r.content ?? {}) as Record<string, Json>)[0]?.schema as Json | undefined;
          return { status, description: r.description, schema: schema && !schema.$ref ? JSON.stringify(schema, null, 2) : undefined };
        }),
      };
      const tag = (op.tags as string[])[0] ?? 'other';
      groups.set(tag, [...(groups.get(tag) ?? []), view]);
    }
  return template({
    title: doc.info.title,
    version: doc.info.version,
    description: doc.info.description,
    openapi: doc.openapi,
    groups: [...groups].sort((a, b) => rank(a[0]) - rank(b[0])).map(([name, operations]) => ({ name, operations })),
  });
}

/** A short one-line rendering of a parameter's schema: `integer 1..500 (default 50)`, `open | resolved`. */
function schemaText(s: Json): string {
  if (s.enum) return (s.enum as unknown[]).join(' | ');
  if (s.anyOf) return (s.anyOf as Json[]).map(schemaText).join(' or ');
  let text = String(s.format ?? s.type ?? 'any');
  if (s.minimum !== undefined || s.maximum !== undefined) text += ` ${s.minimum ?? ''}..${s.maximum ?? ''}`;
  if (s.pattern && !s.format) text += ` /${s.pattern}/`;
  if (s.default !== undefined) text += ` (default ${JSON.stringify(s.default)})`;
  return text;
}
