import { z } from 'zod';

/** What a webhook tells its receiver about; the `type` field of every payload. */
export const EVENT_TYPES = ['fault.opened', 'fault.resolved', 'fault.escalated', 'signature.new', 'signature.regressed', 'supervisor.action', 'supervisor.escalated'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * One event for one endpoint, as the escalation engine hands it over. `id` is stable per event and
 * endpoint: it becomes the `webhook-id` header, the receiver's idempotency key, on every attempt and replay.
 */
export interface WebhookEvent {
  id: string;
  type: EventType;
  /** An endpoint name from config `webhooks.endpoints[].name`. */
  endpoint: string;
  /** When it happened (ms since the epoch). */
  occurredAt: number;
  /** Template context: `{ fault?, signature?, action?, supervisor?, links?, ... }` (README "Webhooks"). */
  data: Record<string, unknown>;
  /**
   * A notification's group and what the group has told once this is sent (escalation's notification log):
   * kept in the outbox row, so the told state is durable exactly when the event is.
   */
  group?: { key: string; told: string[] };
}

/** The shape enqueue() accepts; a bad event is refused before anything is written. */
export const WebhookEventSchema = z.object({
  // Printable ASCII without spaces: it travels in an HTTP header.
  id: z.string().regex(/^[\x21-\x7e]{1,200}$/, 'an id of 1-200 printable ASCII characters, no spaces'),
  type: z.enum(EVENT_TYPES),
  endpoint: z.string().min(1),
  occurredAt: z.number().finite(),
  data: z.record(z.string(), z.unknown()),
  group: z.object({ key: z.string().min(1), told: z.array(z.string()) }).optional(),
});

/** Where a delivery stands; `dead` and `disabled` can be replayed. */
export const DELIVERY_STATES = ['pending', 'delivered', 'dead', 'disabled'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];
