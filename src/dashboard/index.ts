/**
 * The web dashboard: server-rendered pages (templates, CSS and client JS under dashboards/) over the JSON
 * API, with live updates by server-sent events fed by detection and escalation.
 */
export { dashboardRoutes, type DashboardDeps } from './routes.js';
export { LiveFeed, type LiveEvent } from './live.js';
