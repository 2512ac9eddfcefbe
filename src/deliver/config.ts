import { z } from 'zod';
import { DurationSchema } from '../config/duration.js';
import { isWebhookSecret } from './signing.js';
import { BUILTIN_TEMPLATES, TemplateError, builtinTemplates, compileTemplate } from './templates.js';
import { resolve } from 'node:path';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const nameMessage = 'a name of letters, digits, "_", "-" and "." (up to 64)';
/** Headers faultline sets itself; an endpoint's own headers may not replace them. */
const RESERVED_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'content-length', 'host', 'transfer-encoding', 'connection'];
const DAY = 86_400_000;

const secret = z.string().refine(isWebhookSecret, 'a Standard Webhooks secret: "whsec_" followed by the base64 of 24 to 64 random bytes');

export const BreakerSchema = z
  .object({
    /** Consecutive failed attempts (5xx, timeouts, refused connections, 429) that open the breaker. */
    failures: z.number().int().min(1).max(1000).default(5),
    /** How long an open breaker sends nothing before it lets one probe through. */
    open_for: DurationSchema.refine((ms) => ms >= 10, 'at least 10ms').prefault('30s'),
  })
  .strict();

export const BackoffSchema = z
  .object({
    /** The first retry waits up to this long (full jitter), doubling per attempt ... */
    initial: DurationSchema.refine((ms) => ms >= 1, 'at least 1ms').prefault('1s'),
    /** ... up to this cap. */
    max: DurationSchema.refine((ms) => ms >= 1, 'at least 1ms').prefault('10m'),
  })
  .strict();

export const EndpointSchema = z
  .object({
    name: z.string().regex(NAME, nameMessage),
    url: z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' }),
    /** Signing secrets (`whsec_…`); every one signs each webhook, so a receiver can rotate without a gap. */
    secrets: z.array(secret).max(10).default([]),
    /** generic, slack, pagerduty, alertmanager, or a name under webhooks.templates. */
    template: z.string().min(1).default('generic'),
    /** Per attempt, from connect to the end of the response. */
    timeout: DurationSchema.refine((ms) => ms >= 10 && ms <= 300_000, 'between 10ms and 5m').prefault('10s'),
    /** Attempts in flight at once towards this endpoint. */
    max_concurrency: z.number().int().min(1).max(256).default(4),
    /** A delivery not delivered after this long is given up (dead letter, replayable). */
    max_age: DurationSchema.refine((ms) => ms >= 100 && ms <= 7 * DAY, 'between 100ms and 7d').prefault('24h'),
    backoff: BackoffSchema.prefault({}),
    breaker: BreakerSchema.prefault({}),
    /** Extra request headers (e.g. an Authorization for the receiver). */
    headers: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'an HTTP header name'), z.string().regex(/^[^\r\n]*$/, 'a header value on one line')).optional(),
    /** The PagerDuty integration's routing key (template: pagerduty). */
    pagerduty_routing_key: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((e, ctx) => {
    const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    for (const h of Object.keys(e.headers ?? {}))
      if (RESERVED_HEADERS.includes(h.toLowerCase())) issue(['headers', h], `"${h}" is set by faultline and cannot be replaced`);
    if (e.template === 'pagerduty' && !e.pagerduty_routing_key) issue(['pagerduty_routing_key'], 'required with template: pagerduty');
    // Slack and PagerDuty cannot check a signature; every other receiver is expected to.
    if (e.secrets.length === 0 && e.template !== 'slack' && e.template !== 'pagerduty')
      issue(['secrets'], 'at least one whsec_ secret: receivers verify the webhook-signature with it');
    if (e.backoff.initial > e.backoff.max) issue(['backoff', 'initial'], 'larger than backoff.max');
  });

export const WebhooksSchema = z
  .object({
    endpoints: z.array(EndpointSchema).default([]),
    /** Your own payload templates: name -> path of a handlebars file (relative to the working directory). */
    templates: z.record(z.string().regex(NAME, nameMessage), z.string().min(1)).default({}),
  })
  .strict()
  .superRefine((w, ctx) => {
    const names = new Set<string>();
    w.endpoints.forEach((e, i) => {
      if (names.has(e.name)) ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'name'], message: `duplicate endpoint name "${e.name}"` });
      names.add(e.name);
      const known = (BUILTIN_TEMPLATES as readonly string[]).includes(e.template) || e.template in w.templates;
      if (!known)
        ctx.addIssue({
          code: 'custom',
          path: ['endpoints', i, 'template'],
          message: `unknown template "${e.template}"; use ${BUILTIN_TEMPLATES.join(', ')}${Object.keys(w.templates).length ? ` or one of webhooks.templates (${Object.keys(w.templates).join(', ')})` : ' or add it under webhooks.templates'}`,
        });
    });
    builtinTemplates();
    // Compiled and rendered against sample events now: a broken template stops start-up, not a 3 a.m. page.
    for (const [name, path] of Object.entries(w.templates)) {
      if ((BUILTIN_TEMPLATES as readonly string[]).includes(name)) {
        ctx.addIssue({ code: 'custom', path: ['templates', name], message: `"${name}" is a built-in template; give yours another name` });
        continue;
      }
      try {
        compileTemplate(name, resolve(path));
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        ctx.addIssue({ code: 'custom', path: ['templates', name], message: err.message });
      }
    }
  });

export type WebhooksConfig = z.infer<typeof WebhooksSchema>;
export type EndpointConfig = z.infer<typeof EndpointSchema>;
