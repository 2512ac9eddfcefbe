export { openStore, type Store } from './client.js';
export { migrate, pendingMigrations, loadMigrations, type MigrateOptions, type MigrationReport } from './migrate.js';
export { clusterMigrations, clusterNameProblem, SHARDING_KEYS } from './cluster.js';
export { TABLES, type TableName } from './tables.js';
