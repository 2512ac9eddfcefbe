/** The made-up shop the benchmark's spans describe: services, routes, database statements, clients, failures. */

export interface Db { system: string; namespace: string; host: string; port: number; scope: string; ops: [string, string, string][] }
export interface Service { name: string; version: string; routes: [string, string][]; calls: string[]; db?: Db; work: string[] }

const pg = (namespace: string, tables: string[]): Db => ({
  system: 'postgresql', namespace, host: `pg-${namespace}.db.svc.cluster.local`, port: 5432, scope: '@opentelemetry/instrumentation-pg',
  ops: tables.flatMap((t): [string, string, string][] => [
    ['SELECT', t, `SELECT id, created_at, status, payload FROM ${t} WHERE id = $1 AND tenant_id = $2 LIMIT 1`],
    ['INSERT', t, `INSERT INTO ${t} (id, tenant_id, status, payload, created_at) VALUES ($1, $2, $3, $4, now())`],
    ['UPDATE', t, `UPDATE ${t} SET status = $1, updated_at = now() WHERE id = $2`],
  ]),
});
const redis: Db = {
  system: 'redis', namespace: '0', host: 'redis-master.cache.svc.cluster.local', port: 6379, scope: '@opentelemetry/instrumentation-ioredis',
  ops: [['GET', 'stock', 'GET stock:?'], ['HGETALL', 'reservation', 'HGETALL reservation:?'], ['SET', 'stock', 'SET stock:? ?']],
};

export const SERVICES: Service[] = [
  { name: 'frontend', version: '2.14.0', routes: [['GET', '/'], ['GET', '/products/:id'], ['GET', '/cart'], ['POST', '/cart/items']], calls: ['catalog', 'checkout', 'auth'], work: ['render page', 'load session'] },
  { name: 'checkout', version: '1.4.2', routes: [['POST', '/api/checkout'], ['GET', '/api/orders/:id']], calls: ['payments', 'inventory'], db: pg('orders', ['orders', 'order_items']), work: ['validate cart', 'price order'] },
  { name: 'payments', version: '3.0.1', routes: [['POST', '/api/charges'], ['GET', '/api/charges/:id']], calls: ['fraud-check'], db: pg('payments', ['charges', 'refunds']), work: ['sign request'] },
  { name: 'inventory', version: '0.9.7', routes: [['GET', '/api/stock/:id'], ['POST', '/api/reservations']], calls: [], db: redis, work: ['reserve items'] },
  { name: 'catalog', version: '5.2.0', routes: [['GET', '/api/products'], ['GET', '/api/products/:id']], calls: [], db: pg('catalog', ['products', 'prices']), work: ['serialize products'] },
  { name: 'auth', version: '1.1.0', routes: [['POST', '/api/sessions'], ['GET', '/api/me']], calls: [], db: pg('users', ['users', 'sessions']), work: ['verify token'] },
];
export const AGENTS = ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148', 'okhttp/4.12.0', 'node-fetch/3.3.2'];
export const FAILURES: [string, string][] = [['TypeError', "Cannot read properties of undefined (reading 'id')"], ['TimeoutError', 'operation timed out after 5000 ms'], ['PostgresError', 'duplicate key value violates unique constraint "orders_pkey"'], ['Error', 'connect ECONNREFUSED 10.0.3.17:8080']];

export const FRAMES = [
  'handleRequest (/app/dist/routes/orders.js',
  'OrderService.create (/app/dist/services/order-service.js',
  'Pool.query (/app/node_modules/pg-pool/index.js',
  'process.processTicksAndRejections (node:internal/process/task_queues',
  'Router.handle (/app/node_modules/express/lib/router/index.js',
  'Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js',
  'next (/app/node_modules/express/lib/router/route.js',
];
