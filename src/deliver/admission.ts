import type { EndpointConfig } from './config.js';
import type { Delivery } from './endpoint.js';
import type { WebhookEvent } from './events.js';
import { deliveryKey, faultIdsOf, type OutboxRow, type ResumeRow } from './outbox.js';
import type { Template } from './templates.js';

/** An event rendered for its endpoint, as the outbox row it becomes (with the error if it did not render). */
export interface Rendered {
  row: OutboxRow;
  renderError?: string;
}

/**
 * Renders an event with its endpoint's template. A template that fails on this event does not stop the
 * others: the row is kept (empty body) and the delivery recorded dead with the template's error.
 */
export function render(ev: WebhookEvent, ep: { config: EndpointConfig; template: Template }, now: number): Rendered {
  let rendered = { body: '', contentType: 'application/json' };
  let renderError: string | undefined;
  try {
    rendered = ep.template.render(ev, ep.config.pagerduty_routing_key);
  } catch (err) {
    renderError = (err as Error).message;
  }
  return {
    renderError,
    row: {
      id: ev.id,
      endpoint: ev.endpoint,
      type: ev.type,
      created_at: now,
      occurred_at: ev.occurredAt,
      deadline_at: now + ep.config.max_age,
      template: ep.config.template,
      content_type: rendered.contentType,
      body: rendered.body,
      fault_ids: faultIdsOf(ev.data),
      ...(ev.group ? { group_key: ev.group.key, told: ev.group.told } : {}),
    },
  };
}

/** A new delivery of an outbox row: due at once. */
export function fromOutbox(row: Omit<OutboxRow, 'fault_ids'>): Delivery {
  return {
    key: deliveryKey(row.endpoint, row.id),
    id: row.id,
    endpoint: row.endpoint,
    type: row.type,
    body: row.body,
    contentType: row.content_type,
    createdAt: row.created_at,
    deadline: row.deadline_at,
    attempts: 0,
    rev: 0,
    dueAt: row.created_at,
    final: false,
  };
}

/** A delivery the last process left pending, with its attempts so far and the backoff it chose. */
export function fromResume(r: ResumeRow): Delivery {
  return {
    key: deliveryKey(r.endpoint, r.id),
    id: r.id,
    endpoint: r.endpoint,
    type: r.type,
    body: r.body,
    contentType: r.content_type,
    createdAt: r.created_at,
    deadline: r.deadline,
    attempts: r.attempts,
    rev: r.rev,
    // A past due time (or none: never attempted) goes now.
    dueAt: Math.max(r.next_at, 0),
    final: r.next_at > 0 && r.next_at >= r.deadline,
  };
}
