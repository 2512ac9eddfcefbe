export { RuleSet, RulesError, BUILTIN_RULES_FILE, formatBytes, formatDuration, formatTime, type Decision } from './ruleset.js';
export { FAULT_KINDS, TRIGGERS, type FaultKind, type Rule, type RuleSettings, type Trigger } from './schema.js';
export { holds, factAt, type Facts } from './conditions.js';
export { fingerprint, inAppFrames, normaliseText, type Cause } from './fingerprint.js';
export { RulesManager, type ReloadResult } from './manager.js';
export { exceptionFromStderr, type StderrException } from './stderr.js';
