/**
 * The built-in payloads: Alertmanager webhook v4 (same fields and types as a real Alertmanager's bodies,
 * so its receivers work unchanged), PagerDuty Events v2, Slack, and faultline's generic schema.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EVENT_TYPES, type WebhookEvent } from '../../src/deliver/index.js';
import { builtinTemplates } from '../../src/deliver/templates.js';
import type { Fault } from '../../src/faults/index.js';
import { packageRoot } from '../../src/paths.js';

const fixture = (f: string) => JSON.parse(readFileSync(join(packageRoot, 'test', 'deliver', 'testdata', f), 'utf8')) as unknown;
const t0 = Date.parse('2026-11-27T09:51:34.089Z');
const fault: Fault = {
  id: 'a1b2c3d4e5f6a7b8c9d0',
  kind: 'hang',
  state: 'open',
  service: 'peer-target',
  instance: 'peer-1',
  host: 'web-3',
  version: '2.0.1',
  check: '',
  signature: '0123456789abcdef',
  startedAt: t0,
  detectedAt: t0 + 3100,
  resolvedAt: null,
  explanation: 'peer-1 stopped heartbeating 3.1 s ago (φ 9.2) with no exit; event-loop delay rose to 2.4 s first',
  evidence: [],
  causedBy: '',
  ruleId: 'hang',
  rulesVersion: 'abc123',
  occurrences: 1,
};
const links = { base: 'http://faultline.example:8080', fault: `http://faultline.example:8080/api/v1/faults/${fault.id}` };
const event = (type: WebhookEvent['type'], data: Record<string, unknown>, id = `${type}-1`): WebhookEvent => ({ id, type, endpoint: 'am', occurredAt: t0 + 5000, data });
const render = (template: string, ev: WebhookEvent, key?: string) => {
  const r = builtinTemplates().get(template)!.render(ev, key);
  assert.equal(r.contentType, 'application/json');
  return JSON.parse(r.body) as Record<string, any>;
};

const MAPS = new Set(['labels', 'annotations', 'groupLabels', 'commonLabels', 'commonAnnotations']);
/** The JSON shape: keys and value types; label maps are "string map" whatever their keys. */
function shape(v: unknown, key = ''): unknown {
  if (MAPS.has(key)) {
    assert.ok(v && typeof v === 'object' && Object.values(v).every((x) => typeof x === 'string'), `${key} maps strings to strings`);
    return 'map<string,string>';
  }
  if (Array.isArray(v)) return [shape(v[0])];
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, shape(x, k)]));
  return v === null ? 'null' : typeof v;
}

describe('payload templates', () => {
  it('alertmanager: a firing fault has exactly the fields and types of a real Alertmanager v4 body', () => {
    const body = render('alertmanager', event('fault.opened', { fault, links }));
    const real = fixture('alertmanager-webhook-v4.firing.json') as Record<string, any>;
    assert.deepEqual(shape(body), shape(real));
    assert.equal(body.version, '4');
    assert.equal(body.status, 'firing');
    assert.equal(body.alerts[0].status, 'firing');
    assert.equal(body.alerts[0].endsAt, real.alerts[0].endsAt, 'the zero time while firing');
    assert.equal(body.alerts[0].startsAt, '2026-11-27T09:51:34.089Z', 'when it really began');
    assert.match(body.alerts[0].fingerprint, /^[0-9a-f]{16}$/);
    assert.equal(body.alerts[0].labels.alertname, 'Hang');
    assert.equal(body.alerts[0].labels.instance, 'peer-1');
    assert.equal(body.alerts[0].annotations.description, fault.explanation, 'the why, which Alertmanager cannot say');
    assert.equal(body.alerts[0].generatorURL, links.fault);
    assert.equal(body.receiver, 'am');
    assert.match(body.groupKey, /^\{\}:\{alertname="Hang", instance="peer-1"\}$/);
  });

  it('alertmanager: the resolved fault matches the resolved body, with the same fingerprint', () => {
    const resolvedFault = { ...fault, state: 'resolved', resolvedAt: t0 + 17_000 };
    const body = render('alertmanager', event('fault.resolved', { fault: resolvedFault, links, status: 'resolved' }));
    const real = fixture('alertmanager-webhook-v4.resolved.json');
    assert.deepEqual(shape(body), shape(real));
    assert.equal(body.status, 'resolved');
    assert.equal(body.alerts[0].endsAt, '2026-11-27T09:51:51.089Z');
    const firing = render('alertmanager', event('fault.opened', { fault, links }));
    assert.equal(body.alerts[0].fingerprint, firing.alerts[0].fingerprint, 'one alert, firing then resolved');
  });

  it('pagerduty: trigger then resolve of one incident (a stable dedup_key per fault), with the routing key', () => {
    const opened = render('pagerduty', event('fault.opened', { fault, links }), 'R0UT1NGKEY');
    const escalated = render('pagerduty', event('fault.escalated', { fault, links, supervisor: { name: 'root' } }, 'other-id'), 'R0UT1NGKEY');
    const resolved = render('pagerduty', event('fault.resolved', { fault: { ...fault, state: 'resolved', resolvedAt: t0 + 9000 }, links }), 'R0UT1NGKEY');
    for (const b of [opened, escalated, resolved]) {
      assert.equal(b.routing_key, 'R0UT1NGKEY');
      assert.equal(b.dedup_key, fault.id);
    }
    assert.equal(opened.event_action, 'trigger');
    assert.equal(escalated.event_action, 'trigger');
    assert.equal(resolved.event_action, 'resolve');
    assert.equal(resolved.payload, undefined, 'a resolve needs no payload');
    const p = opened.payload;
    assert.ok(p.summary.length > 0 && p.summary.length <= 1024);
    assert.equal(p.source, 'web-3');
    assert.ok(['critical', 'error', 'warning', 'info'].includes(p.severity));
    assert.equal(escalated.payload.severity, 'critical');
    assert.equal(p.timestamp, new Date(t0 + 5000).toISOString());
    assert.equal(p.component, 'peer-target');
    assert.equal(p.class, 'hang');
    assert.deepEqual(opened.links, [{ href: links.base, text: 'base' }, { href: links.fault, text: 'fault' }]);
    const long = render('pagerduty', event('fault.opened', { fault: { ...fault, explanation: 'x'.repeat(5000) } }), 'K');
    assert.equal(long.payload.summary.length, 1024, 'cut to the PagerDuty limit');
  });

  it('slack: a text and blocks, with mrkdwn control characters escaped', () => {
    const body = render('slack', event('fault.opened', { fault: { ...fault, explanation: 'a <b> & c' }, links }));
    assert.equal(typeof body.text, 'string');
    assert.ok(Array.isArray(body.blocks));
    assert.equal(body.blocks[1].text.text, 'a &lt;b&gt; &amp; c');
    assert.equal(body.blocks.at(-1).elements[0].url, links.fault);
  });

  it('generic: the documented schema for every event type', () => {
    assert.deepEqual([...EVENT_TYPES], ['fault.opened', 'fault.resolved', 'fault.escalated', 'signature.new', 'signature.regressed', 'supervisor.action', 'supervisor.escalated']);
    for (const type of EVENT_TYPES) {
      const data: Record<string, unknown> = { fault, links, signature: { fingerprint: '0123456789abcdef', kind: 'hang', title: 'hang in peer', firstSeen: t0 } };
      if (type === 'supervisor.action') data.action = { action: 'restart', detail: 'restart peer-1' };
      if (type === 'supervisor.escalated') Object.assign(data, { supervisor: { name: 'edge', strategy: 'one_for_one', escalated_to: 'root' }, explanation: 'edge spent its restart budget (3 in 600 s)' });
      const b = render('generic', event(type, data));
      assert.deepEqual(Object.keys(b).sort(), ['action', 'endpoint', 'explanation', 'fault', 'id', 'links', 'occurred_at', 'schema', 'severity', 'signature', 'status', 'supervisor', 'target', 'title', 'type'].sort());
      assert.equal(b.schema, 'faultline.webhook/v1');
      assert.equal(b.type, type);
      assert.equal(b.id, `${type}-1`);
      assert.equal(b.fault.id, fault.id);
      assert.equal(b.fault.started_at, '2026-11-27T09:51:34.089Z', 'times as ISO strings');
      assert.deepEqual(b.target, { service: 'peer-target', instance: 'peer-1', host: 'web-3', version: '2.0.1' });
      assert.equal(b.signature.first_seen, '2026-11-27T09:51:34.089Z');
      assert.equal(b.status, type === 'fault.resolved' ? 'resolved' : 'firing');
      if (type === 'supervisor.escalated') {
        assert.equal(b.title, 'edge escalated: hang on peer-target/peer-1');
        assert.equal(b.explanation, 'edge spent its restart budget (3 in 600 s)');
        assert.deepEqual(b.supervisor, { name: 'edge', strategy: 'one_for_one', escalated_to: 'root' });
      }
    }
  });
});
