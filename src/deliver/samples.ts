import { EVENT_TYPES, type EventType, type WebhookEvent } from './events.js';

/**
 * One sample event of every type, shaped as the escalation engine sends them. Every template is rendered
 * against all of them when the configuration loads, so a template that fails does so at start-up.
 */
export function sampleEvents(endpoint = 'sample'): WebhookEvent[] {
  const at = Date.parse('2026-01-02T03:04:05.678Z');
  const fault = {
    id: '0123456789abcdef0123',
    kind: 'crash',
    state: 'open',
    service: 'checkout',
    instance: 'checkout-1',
    host: 'web-1',
    version: '1.4.2',
    check: '',
    signature: '89abcdef01234567',
    startedAt: at - 1200,
    detectedAt: at,
    resolvedAt: null as number | null,
    explanation: 'checkout-1 exited with code 1 after an uncaught TypeError: Cannot read properties of undefined',
    evidence: [{ type: 'exit', at: new Date(at - 1200).toISOString(), service: 'checkout', instance: 'checkout-1' }],
    causedBy: '',
    ruleId: 'crash',
    rulesVersion: 'a1b2c3d4',
    occurrences: 1,
  };
  const signature = { fingerprint: '89abcdef01234567', kind: 'crash', exceptionType: 'TypeError', title: 'TypeError in cart.total', cause: 'TypeError at cart.total', firstSeen: at - 86_400_000, state: 'new' };
  const links = { base: 'http://faultline.example:8080', fault: `http://faultline.example:8080/api/v1/faults/${fault.id}`, signature: `http://faultline.example:8080/api/v1/signatures/${signature.fingerprint}` };
  const data: Record<EventType, Record<string, unknown>> = {
    'fault.opened': { fault, signature, links },
    'fault.resolved': { fault: { ...fault, state: 'resolved', resolvedAt: at + 30_000 }, signature, links, status: 'resolved' },
    'fault.escalated': { fault, signature, links, supervisor: { name: 'root', strategy: 'one_for_one' } },
    'signature.new': { signature, fault, links },
    'signature.regressed': { signature: { ...signature, state: 'regressed' }, fault, links },
    'supervisor.action': { action: { id: 'act-1', action: 'restart', supervisor: 'web', strategy: 'one_for_one', children: [{ name: 'checkout' }], detail: 'restart checkout-1' }, fault, supervisor: { name: 'web', strategy: 'one_for_one' }, links },
    'supervisor.escalated': {
      fault,
      supervisor: { name: 'web', strategy: 'one_for_one', escalated_to: 'root' },
      escalation: { from: 'web', to: 'root', reason: 'web spent its restart budget (3 in 600 s)' },
      explanation: 'web spent its restart budget (3 in 600 s)',
      links,
    },
  };
  return EVENT_TYPES.map((type) => ({ id: `msg_sample_${type}`, type, endpoint, occurredAt: at, data: data[type] }));
}
