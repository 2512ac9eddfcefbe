/**
 * The HTTP surface: the fastify app with faultline's conventions, the route layer (zod-validated,
 * scope-checked, documented in OpenAPI), API tokens, and the query API's routes.
 */
export { createApp, toFaultlineError, routeLabel, routesOf, type AppOptions, type ErrorBody } from './app.js';
export { Auth, TOKEN_COOKIE, sessionCookie, tokenOf, type Caller, type HasHeaders, type Requirement, type Scope } from './auth.js';
export { defineRoute, parse, jsonBody, type RouteSpec, type RouteInput, type RouteTable, type ResponseSpec } from './route.js';
export { OpenApiRegistry, jsonSchema } from './openapi.js';
export { renderDocs } from './docs.js';
export { apiRoutes, isoFromNanos } from './routes.js';
export { faultRoutes, faultView } from './faults.js';
export { timelineRoutes } from './timeline.js';
export { checkRoutes } from './checks.js';
export { targetRoutes } from './targets.js';
