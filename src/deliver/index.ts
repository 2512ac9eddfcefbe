/**
 * Webhook delivery: durable (outbox first), signed (Standard Webhooks), retried with backoff, isolated
 * per endpoint (queue, concurrency, circuit breaker), recorded attempt by attempt, replayable.
 */
export { Deliverer, type DelivererOptions } from './deliverer.js';
export { EVENT_TYPES, DELIVERY_STATES, type EventType, type WebhookEvent, type DeliveryState } from './events.js';
export { WebhooksSchema, type WebhooksConfig, type EndpointConfig } from './config.js';
export { deliveryRoutes, type DeliveryRoutesOptions } from './routes.js';
export { DeliveryError } from './errors.js';
export { TemplateError, BUILTIN_TEMPLATES } from './templates.js';
export { sign, verify, secretKey } from './signing.js';
export { Rounds } from './rounds.js';
