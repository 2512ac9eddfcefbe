export { ConfigSchema, type Config, type Retention } from './schema.js';
export { loadConfig, ConfigError, ENV_NAMES, type LoadedConfig, type LoadOptions } from './load.js';
export { readYamlFile, YamlError } from './yaml.js';
