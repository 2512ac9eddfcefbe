import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TOKEN_COOKIE, sessionCookie, type Auth } from '../api/index.js';
import type { Logger } from '../log/index.js';
import { ApiClient, ApiError } from './api-client.js';
import { faultDetailModel, faultListModel, signatureModel } from './faults.js';
import { SILENCE_DURATIONS, cookie, formBody, localPath, parseMatchers, queryOf, sameOrigin, setFlash, takeFlash } from './forms.js';
import type { LiveFeed } from './live.js';
import { overviewModel } from './overview.js';
import { checksModel, clusterModel, deliveriesModel, deliveryModel, rulesModel, silencesModel, supervisionModel } from './operations.js';
import { DASHBOARDS_DIR, Views, type PageMeta } from './render.js';

export interface DashboardDeps {
  /** The app serving the JSON API: every read and action goes through it (see ApiClient). */
  app: FastifyInstance;
  feed: LiveFeed;
  /** The API's tokens: pages need `read`, actions `admin` (the API checks again on every call). */
  auth: Auth;
  log: Logger;
}

const ASSETS: Record<string, string> = { 'style.css': 'text/css; charset=utf-8', 'app.js': 'text/javascript; charset=utf-8', 'icon.svg': 'image/svg+xml' };

/** A page's model; `status` when the page explains a problem of the request (a bad filter answers 400). */
type Build = (api: ApiClient, req: FastifyRequest) => Promise<{ title?: string; model: object; status?: number }>;

/**
 * The web dashboard: server-rendered pages over the JSON API, forms for its actions (silences, replays,
 * signature state, rules reload), a login page for token-protected deployments, static assets from
 * dashboards/assets, and the live feed at /events.
 */
export function dashboardRoutes(app: FastifyInstance, deps: DashboardDeps): void {
  const assets = new Map(Object.entries(ASSETS).map(([name, type]) => [name, { type, body: readFileSync(join(DASHBOARDS_DIR, 'assets', name)) }]));
  const assetVersion = createHash('sha256')
    .update(Buffer.concat([...assets.values()].map((a) => a.body)))
    .digest('hex')
    .slice(0, 10);
  const views = new Views(assetVersion);

  const html = (reply: FastifyReply, status: number, page: string, meta: PageMeta, model: object) =>
    reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(views.render(page, meta, model));

  const failed = (req: FastifyRequest, reply: FastifyReply, err: unknown, nav: string) => {
    if (err instanceof ApiError && err.status === 401) return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
    const status = err instanceof ApiError ? err.status : 500;
    const message =
      err instanceof ApiError
        ? status === 403
          ? `Your token may not see this (${err.message}). Log in with a token that has the read scope.`
          : err.message
        : 'The page could not be built; the faultline log has the details.';
    if (!(err instanceof ApiError)) deps.log.error('dashboard page failed', { url: req.url, error: err });
    const title = status === 404 ? 'Not found' : status === 403 ? 'Not allowed' : status === 400 ? 'Bad request' : 'Something went wrong';
    return html(reply, status, 'error', { title, nav }, { status, title, message, loginLink: status === 403 });
  };

  /** Pages need the read scope: no token (or an unknown one) goes to the login page, too few scopes is a 403 page. */
  const readable = (req: FastifyRequest, reply: FastifyReply, nav: string): boolean => {
    if (deps.auth.allows(req, 'read')) return true;
    if (!deps.auth.identify(req)) void reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
    else void failed(req, reply, new ApiError(403, 'forbidden', 'this token lacks the read scope'), nav);
    return false;
  };

  const page = (nav: string, template: string, title: string, build: Build) => async (req: FastifyRequest, reply: FastifyReply) => {
    if (!readable(req, reply, nav)) return reply;
    const api = new ApiClient(app, req);
    try {
      const built = await build(api, req);
      return html(reply, built.status ?? 200, template, { title: built.title ?? title, nav, flash: takeFlash(req, reply), loggedIn: cookie(req, TOKEN_COOKIE) !== undefined }, built.model);
    } catch (err) {
      return failed(req, reply, err, nav);
    }
  };

  /** A form post: refused from other sites; the API's answer becomes a message on the page it returns to. */
  const action = (fallback: string, run: (api: ApiClient, form: URLSearchParams, req: FastifyRequest) => Promise<string>) => async (req: FastifyRequest, reply: FastifyReply) => {
    const form = formBody(req);
    const back = localPath(form.get('return_to'), fallback);
    if (!sameOrigin(req)) return reply.code(403).type('text/plain').send('refused: this form was posted from another site');
    if (!deps.auth.identify(req)) return reply.redirect(`/login?next=${encodeURIComponent(back)}`, 303);
    try {
      if (!deps.auth.allows(req, 'admin')) throw new ApiError(403, 'forbidden', 'this token lacks the admin scope');
      setFlash(reply, 'ok', await run(new ApiClient(app, req), form, req));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return reply.redirect(`/login?next=${encodeURIComponent(back)}`, 303);
      const text = err instanceof ApiError ? (err.status === 403 ? `Not allowed: this needs a token with the admin scope (${err.message})` : err.message) : (err as Error).message;
      setFlash(reply, 'error', text);
    }
    return reply.redirect(back, 303);
  };

  app.get<{ Params: { name: string } }>('/assets/:name', async (req, reply) => {
    const a = assets.get(req.params.name);
    if (!a) return reply.code(404).type('text/plain').send('no such asset');
    // Pages link assets with ?v=<content hash>: a new version is a new URL, so browsers may keep them.
    return reply.type(a.type).header('cache-control', req.query && (req.query as { v?: string }).v ? 'public, max-age=31536000, immutable' : 'no-cache').send(a.body);
  });

  app.get('/', page('overview', 'overview', 'Overview', async (api) => ({ model: await overviewModel(api) })));
  app.get(
    '/faults',
    page('faults', 'faults', 'Faults', async (api, req) => {
      const model = await faultListModel(api, queryOf(req));
      return { model, status: 'error' in model ? 400 : 200 };
    }),
  );
  app.get<{ Params: { id: string } }>(
    '/faults/:id',
    page('faults', 'fault', 'Fault', async (api, req) => {
      const model = await faultDetailModel(api, (req.params as { id: string }).id);
      return { title: `${model.fault.kind.replace(/_/g, ' ')} · ${model.fault.targetName}`, model: { ...model, durations: SILENCE_DURATIONS } };
    }),
  );
  app.get<{ Params: { fp: string } }>(
    '/signatures/:fp',
    page('faults', 'signature', 'Signature', async (api, req) => {
      const model = await signatureModel(api, (req.params as { fp: string }).fp);
      return { title: `Signature ${model.sig.title || model.sig.fingerprint}`, model };
    }),
  );
  app.get('/supervision', page('supervision', 'supervision', 'Supervision', async (api) => ({ model: await supervisionModel(api) })));
  app.get('/checks', page('checks', 'checks', 'Checks', async (api, req) => ({ model: await checksModel(api, queryOf(req)) })));
  app.get('/silences', page('silences', 'silences', 'Silences', async (api, req) => ({ model: { ...(await silencesModel(api, queryOf(req))), durations: SILENCE_DURATIONS } })));
  app.get('/cluster', page('cluster', 'cluster', 'Cluster', async (api) => ({ model: await clusterModel(api) })));
  app.get(
    '/deliveries',
    page('deliveries', 'deliveries', 'Deliveries', async (api, req) => {
      const model = await deliveriesModel(api, queryOf(req));
      return { model, status: 'status' in model ? model.status : 200 };
    }),
  );
  app.get<{ Params: { id: string } }>(
    '/deliveries/:id',
    page('deliveries', 'delivery', 'Delivery', async (api, req) => {
      const model = await deliveryModel(api, (req.params as { id: string }).id, queryOf(req).endpoint);
      return { title: `${model.d.type} to ${model.d.endpoint}`, model };
    }),
  );
  app.get('/rules', page('rules', 'rules', 'Rules', async (api) => ({ model: await rulesModel(api) })));

  app.post(
    '/silences',
    action('/silences', async (api, form) => {
      const matchers = parseMatchers(form.get('matchers') ?? '');
      if (typeof matchers === 'string') throw new ApiError(400, 'bad_matchers', matchers);
      const duration = SILENCE_DURATIONS.find((d) => d.value === form.get('duration')) ?? SILENCE_DURATIONS[1];
      const created = await api.post<{ id: string; ends_at: string }>('/api/v1/silences', {
        matchers,
        ends_at: new Date(Date.now() + duration.ms).toISOString(),
        author: form.get('author') ?? '',
        comment: form.get('comment') ?? '',
      });
      return `Silenced ${Object.entries(matchers).map(([k, v]) => `${k}=${v}`).join(', ')} for ${duration.label} (silence ${created.id}).`;
    }),
  );
  app.post<{ Params: { id: string } }>(
    '/silences/:id/expire',
    action('/silences', async (api, _form, req) => {
      const { id } = req.params as { id: string };
      await api.delete(`/api/v1/silences/${encodeURIComponent(id)}`);
      return `Silence ${id} expired.`;
    }),
  );
  app.post<{ Params: { id: string } }>(
    '/deliveries/:id/replay',
    action('/deliveries', async (api, form, req) => {
      const { id } = req.params as { id: string };
      const endpoint = form.get('endpoint');
      const d = await api.post<{ state: string; endpoint: string }>(`/api/v1/deliveries/${encodeURIComponent(id)}/replay${endpoint ? `?endpoint=${encodeURIComponent(endpoint)}` : ''}`);
      return `Delivery ${id} to ${d.endpoint} replayed: ${d.state}.`;
    }),
  );
  app.post<{ Params: { fp: string } }>(
    '/signatures/:fp/state',
    action('/faults', async (api, form, req) => {
      const { fp } = req.params as { fp: string };
      const state = form.get('state') ?? '';
      await api.post(`/api/v1/signatures/${encodeURIComponent(fp)}/state`, { state, author: form.get('author') ?? '', comment: form.get('comment') ?? '' });
      return state === 'active' ? 'Signature active again.' : `Signature marked ${state}.`;
    }),
  );
  app.post<{ Params: { slug: string; verb: string } }>(
    '/checks/:slug/:verb',
    action('/checks', async (api, form, req) => {
      const { slug, verb } = req.params as { slug: string; verb: string };
      if (verb !== 'pause' && verb !== 'resume') throw new ApiError(404, 'not_found', `no check action "${verb}"`);
      await api.post(`/api/v1/checks/${encodeURIComponent(slug)}/${verb}`, { author: form.get('author') ?? '' });
      return `Check ${slug} ${verb === 'pause' ? 'paused: it raises no fault until resumed' : 'resumed: judged from now on'}.`;
    }),
  );
  app.post(
    '/rules/reload',
    action('/rules', async (api) => {
      try {
        const r = await api.post<{ version: string }>('/api/v1/rules/reload');
        return `Rules reloaded: version ${r.version}.`;
      } catch (err) {
        const body = err instanceof ApiError ? (err.body as { errors?: string[] } | undefined) : undefined;
        if (body?.errors?.length) throw new ApiError(422, 'rules_rejected', `The new rules were rejected (the old ones keep running): ${body.errors.join('; ')}`);
        throw err;
      }
    }),
  );

  app.get('/login', async (req, reply) => {
    const q = queryOf(req);
    return html(reply, 200, 'login', { title: 'Log in', nav: '', flash: takeFlash(req, reply) }, { next: localPath(q.next, '/'), open: !deps.auth.enabled });
  });

  app.post('/login', async (req, reply) => {
    if (!sameOrigin(req)) return reply.code(403).type('text/plain').send('refused: this form was posted from another site');
    const form = formBody(req);
    const next = localPath(form.get('next'), '/');
    const token = (form.get('token') ?? '').trim();
    const caller = token ? deps.auth.identifySecret(token, 'cookie') : undefined;
    if (!caller || !caller.scopes.has('read')) {
      const message = !token ? 'Enter a token.' : !caller ? 'That token is not valid.' : `Token "${caller.name}" may not read: it needs the read or admin scope.`;
      return html(reply, 401, 'login', { title: 'Log in', nav: '', flash: { kind: 'error', text: message } }, { next, open: !deps.auth.enabled });
    }
    void reply.header('set-cookie', sessionCookie(token, { secure: req.protocol === 'https', maxAgeS: 30 * 86_400 }));
    return reply.redirect(next, 303);
  });

  app.post('/logout', async (req, reply) => {
    if (!sameOrigin(req)) return reply.code(403).type('text/plain').send('refused: this form was posted from another site');
    void reply.header('set-cookie', sessionCookie('', { maxAgeS: 0 }));
    return reply.redirect('/login', 303);
  });

  app.get('/events', async (req, reply) => {
    // The feed says what happened (fault kinds and targets): only for viewers who may read.
    if (!deps.auth.allows(req, 'read')) {
      const status = deps.auth.identify(req) ? 403 : 401;
      return reply.code(status).type('application/json').send({ error: { code: status === 401 ? 'unauthorized' : 'forbidden', message: 'the live feed needs a token with the read scope' } });
    }
    deps.feed.attach(reply, (req.headers['last-event-id'] as string | undefined) ?? undefined);
  });

  app.addHook('preClose', (done) => {
    deps.feed.close();
    done();
  });
}
