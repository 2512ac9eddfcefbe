export { openStore, type Store } from './client.js';
export { migrate, pendingMigrations, loadMigrations, type MigrationReport } from './migrate.js';
export { TABLES, type TableName } from './tables.js';
