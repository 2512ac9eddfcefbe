export { ConfigSchema, SCOPES, isLoopback, type AuthConfig, type Config, type Retention, type Scope, type TokenConfig } from './schema.js';
export { loadConfig, ConfigError, ENV_NAMES, type LoadedConfig, type LoadOptions } from './load.js';
export { readYamlFile, YamlError } from './yaml.js';
