import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from '../log/index.js';
import { RuleSet, RulesError } from './ruleset.js';

export interface ReloadResult {
  at: string;
  ok: boolean;
  /** The version running after this reload (the old one when it failed). */
  version: string;
  trigger: 'start' | 'file' | 'api';
  errors: string[];
}

/**
 * Holds the running rules and upgrades them live: a new version is loaded and checked in full first; an
 * invalid one is rejected with its errors and the old rules keep running. Evidence keeps flowing during a
 * reload: detection reads `current` per decision, and swapping it is a single assignment.
 */
export class RulesManager {
  private rules: RuleSet;
  readonly history: ReloadResult[] = [];
  private watcher?: FSWatcher;
  private debounce?: NodeJS.Timeout;

  constructor(
    private readonly file: string | undefined,
    private readonly log: Logger,
  ) {
    this.rules = RuleSet.load(file);
    this.record('start', true, []);
  }

  get current(): RuleSet {
    return this.rules;
  }

  get last(): ReloadResult {
    return this.history[this.history.length - 1];
  }

  reload(trigger: 'file' | 'api' = 'api'): ReloadResult {
    try {
      const next = RuleSet.load(this.file);
      const changed = next.version !== this.rules.version;
      this.rules = next;
      const result = this.record(trigger, true, []);
      this.log.info(changed ? 'rules reloaded' : 'rules reloaded (unchanged)', { version: next.version, trigger });
      return result;
    } catch (err) {
      const errors = err instanceof RulesError ? err.message.split('\n') : [String((err as Error).message ?? err)];
      this.log.error('rules reload rejected; the previous rules keep running', { version: this.rules.version, errors: errors.join(' | ') });
      return this.record(trigger, false, errors);
    }
  }

  /** Watches the rules file (its folder, so editors that replace the file are seen too). */
  watch(): void {
    if (!this.file || this.watcher) return;
    const file = resolve(this.file);
    this.watcher = watch(dirname(file), (_event, name) => {
      if (name && name !== basename(file)) return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.reload('file'), 200);
    });
    this.watcher.on('error', (err) => this.log.warn('cannot watch the rules file; use POST /api/v1/rules/reload', { error: err }));
  }

  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = undefined;
  }

  private record(trigger: ReloadResult['trigger'], ok: boolean, errors: string[]): ReloadResult {
    const result = { at: new Date().toISOString(), ok, version: this.rules.version, trigger, errors };
    this.history.push(result);
    if (this.history.length > 50) this.history.shift();
    return result;
  }
}
