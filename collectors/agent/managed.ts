/** What the agent acts on: a program it runs, or a systemd unit. */

/** The actions the agent carries out; any other name is reported as failed. */
export const ACTIONS = ['restart', 'stop', 'start'] as const;
export type ActionName = (typeof ACTIONS)[number];

export const isActionName = (name: string): name is ActionName => (ACTIONS as readonly string[]).includes(name);

export interface OpResult {
  ok: boolean;
  message: string;
}

export interface Managed {
  readonly kind: 'program' | 'unit';
  readonly name: string;
  /** The target identity faultline knows it by (service.name, service.instance.id). */
  readonly service: string;
  readonly instance: string;
  /** host.name it reports (label `host` for matchers). */
  readonly host: string;
  act(action: ActionName): Promise<OpResult>;
  status(): Record<string, unknown>;
}
