/**
 * What faultline made of the story, as it happens: polls the same JSON API the dashboard reads and prints
 * each fault opened and resolved, each supervisor action and its result, and each notification held back
 * (inhibited, silenced). Also the tally the demo ends with: which fault kinds were seen.
 */
import { FAULT_KINDS } from '../../src/rules/index.js';

interface FaultView {
  id: string;
  kind: string;
  state: string;
  target: { service: string; instance: string; host: string };
  check?: string;
  explanation: string;
  caused_by: string | null;
  occurrences: number;
}

interface ActionView {
  id: string;
  supervisor: string;
  action: string;
  strategy: string;
  children: { name: string }[];
  state: string;
  detail: string;
}

interface Suppressed {
  faultId: string;
  reason: string;
  at: number;
}

export interface Tally {
  kinds: Set<string>;
  actions: number;
  succeeded: number;
  escalations: number;
}

const subject = (f: FaultView) => f.check || (f.target.instance ? `${f.target.service}/${f.target.instance}` : f.target.service || `host ${f.target.host}`);
const short = (text: string, n = 160) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

/** Polls faultline every `everyMs` and tells what changed; `stop()` ends it. */
export class StoryWatcher {
  readonly tally: Tally = { kinds: new Set(), actions: 0, succeeded: 0, escalations: 0 };
  private readonly faults = new Map<string, string>();
  private readonly actions = new Map<string, string>();
  private readonly suppressed = new Set<string>();
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly base: string,
    private readonly tell: (what: string, text: string) => void,
  ) {}

  start(everyMs = 1000): void {
    this.timer = setInterval(() => void this.poll(), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The kinds not seen yet. */
  missingKinds(): string[] {
    return FAULT_KINDS.filter((k) => !this.tally.kinds.has(k));
  }

  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const [faults, actions, supervision] = await Promise.all([
        this.get<{ faults: FaultView[] }>('/api/v1/faults?limit=200'),
        this.get<{ actions: ActionView[] }>('/api/v1/actions'),
        this.get<{ suppressed: Suppressed[] }>('/api/v1/supervision'),
      ]);
      for (const f of [...(faults?.faults ?? [])].reverse()) this.fault(f);
      for (const a of [...(actions?.actions ?? [])].reverse()) this.action(a);
      for (const s of [...(supervision?.suppressed ?? [])].reverse()) this.held(s);
    } finally {
      this.busy = false;
    }
  }

  private fault(f: FaultView): void {
    const seen = this.faults.get(f.id);
    const now = `${f.state}:${f.occurrences}`;
    if (seen === now) return;
    this.faults.set(f.id, now);
    this.tally.kinds.add(f.kind);
    if (!seen) this.tell('fault', `${f.kind.padEnd(19)} ${subject(f)}: ${short(f.explanation)}${f.caused_by ? ` [caused by ${f.caused_by}]` : ''}`);
    else if (f.state === 'resolved' && !seen.startsWith('resolved')) this.tell('resolved', `${f.kind.padEnd(19)} ${subject(f)}`);
    else if (f.state === 'open') this.tell('fault', `${f.kind.padEnd(19)} ${subject(f)}: ${f.occurrences} occurrences`);
  }

  private action(a: ActionView): void {
    const seen = this.actions.get(a.id);
    if (seen === a.state) return;
    this.actions.set(a.id, a.state);
    const children = a.children.map((c) => c.name).join(', ');
    if (!seen) {
      this.tally.actions++;
      if (a.supervisor === 'root') this.tally.escalations++;
      this.tell('supervisor', `${a.supervisor} (${a.strategy}): ${a.action} ${children}${a.supervisor === 'root' ? ' — escalated from its child supervisor' : ''}`);
    }
    if (a.state === 'succeeded' || a.state === 'failed') {
      if (a.state === 'succeeded') this.tally.succeeded++;
      this.tell('supervisor', `${a.supervisor}: ${a.action} ${children} ${a.state}${a.detail ? ` (${short(a.detail, 100)})` : ''}`);
    }
  }

  private held(s: Suppressed): void {
    const key = `${s.faultId}:${s.reason}`;
    if (this.suppressed.has(key)) return;
    this.suppressed.add(key);
    this.tell('not paged', `fault ${s.faultId}: ${s.reason}`);
  }

  /** Signatures that grouped more than one fault, most first: "title ×n". */
  async groupedSignatures(): Promise<string[]> {
    const list = await this.get<{ signatures: { title: string; kind: string; count: number }[] }>('/api/v1/signatures?limit=100');
    return (list?.signatures ?? [])
      .filter((s) => s.count > 1)
      .sort((a, b) => b.count - a.count)
      .map((s) => `${short(s.title, 60)} (${s.kind}) ×${s.count}`);
  }

  private async get<T>(path: string): Promise<T | undefined> {
    try {
      const res = await fetch(`${this.base}${path}`, { signal: AbortSignal.timeout(5000) });
      return res.ok ? ((await res.json()) as T) : undefined;
    } catch {
      return undefined; // faultline busy or restarting: the next poll catches up
    }
  }
}
