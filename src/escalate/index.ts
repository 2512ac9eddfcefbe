export { EscalationSchema, type EscalationConfig } from './config.js';
export { Escalator, type EventSink, type Action } from './engine.js';
export { Silences } from './silences.js';
export { escalationRoutes } from './routes.js';
