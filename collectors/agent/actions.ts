/**
 * From a `supervisor.action` webhook (faultline's `generic` payload) to what the agent does: which managed
 * programs and units the action's children name, and the action carried out on each.
 *
 * A child names targets by label matchers (as the supervision tree in faultline's config writes them) on
 * their service, instance and host. The child that covers the faulty target is the failed child: only that
 * target is acted on, not every instance its matcher covers (its healthy replicas did not fail). The other
 * children the strategy names (`one_for_all`, `rest_for_one`, an escalation to a parent) are acted on wholly.
 */
import { z } from 'zod';
import { isActionName, type Managed, type OpResult } from './managed.js';

const Labels = z.record(z.string(), z.string());

const ChildSchema = z.object({ name: z.string(), match: Labels.nullish(), check: z.string().nullish() });

/** The fields of faultline's generic payload (README "Webhooks") the agent reads; others are let through. */
export const ActionEventSchema = z.looseObject({
  schema: z.string().optional(),
  id: z.string().optional(),
  type: z.string(),
  action: z
    .looseObject({
      id: z.string().min(1),
      action: z.string().min(1),
      children: z.array(ChildSchema).default([]),
      supervisor: z.string().optional(),
      strategy: z.string().optional(),
    })
    .nullish(),
  fault: z
    .looseObject({
      id: z.string().optional(),
      kind: z.string().optional(),
      target: z.looseObject({ service: z.string().optional(), instance: z.string().optional(), host: z.string().optional(), version: z.string().optional() }).nullish(),
      check: z.string().nullish(),
      signature: z.string().nullish(),
      rule: z.looseObject({ id: z.string().optional() }).nullish(),
    })
    .nullish(),
});

export type ActionEvent = z.infer<typeof ActionEventSchema>;
export type SupervisorAction = NonNullable<ActionEvent['action']>;

/** Every given label equals the value, or matches it when written `~regex` (anchored), as faultline matches. */
export function matches(match: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(match).every(([k, v]) => {
    if (!v.startsWith('~')) return (labels[k] ?? '') === v;
    try {
      return new RegExp(`^(?:${v.slice(1)})$`).test(labels[k] ?? '');
    } catch {
      return false;
    }
  });
}

export interface Selection {
  targets: Managed[];
  /** Children this agent cannot act on, said in the result. */
  notes: string[];
}

/** The managed targets an action's children name (each once, in the children's order). */
export function select(event: ActionEvent, managed: Managed[]): Selection {
  const children = event.action?.children ?? [];
  const f = event.fault;
  const t = f?.target;
  const faultLabels: Record<string, string> = {
    kind: f?.kind ?? '',
    service: t?.service ?? '',
    instance: t?.instance ?? '',
    host: t?.host ?? '',
    version: t?.version ?? '',
    check: f?.check ?? '',
    signature: f?.signature ?? '',
    rule: f?.rule?.id ?? '',
  };
  const failed = t?.service ? children.findIndex((c) => c.match && matches(c.match, faultLabels)) : -1;
  const targets = new Set<Managed>();
  const notes: string[] = [];
  children.forEach((child, i) => {
    if (!child.match) {
      if (child.check) notes.push(`${child.name}: check "${child.check}" is not run by this agent`);
      return;
    }
    let hits = managed.filter((m) => matches(child.match!, { ...faultLabels, service: m.service, instance: m.instance, host: m.host }));
    if (i === failed && t?.instance) hits = hits.filter((m) => m.service === t.service && m.instance === t.instance);
    if (hits.length === 0) notes.push(`${child.name}: nothing managed here matches ${describeMatch(child.match)}${i === failed && t?.instance ? ` and is ${t.service}/${t.instance}` : ''}`);
    hits.forEach((m) => targets.add(m));
  });
  return { targets: [...targets], notes };
}

const describeMatch = (m: Record<string, string>) => `{${Object.entries(m).map(([k, v]) => `${k}: ${v}`).join(', ')}}`;

/** faultline keeps a result's message up to 2000 characters. */
const MAX_MESSAGE = 2000;

export interface ActionOutcome {
  ok: boolean;
  message: string;
}

/** Carries out the action on every selected target (in parallel; each target's operations in order). */
export async function carryOut(action: SupervisorAction, selection: Selection): Promise<ActionOutcome> {
  const name = action.action;
  if (!isActionName(name)) return { ok: false, message: `unknown action "${name}": this agent carries out restart, stop and start` };
  if (selection.targets.length === 0) return { ok: false, message: cut(`${name}: nothing to act on: ${selection.notes.join('; ') || 'the action names no children'}`) };
  const results: { target: Managed; result: OpResult }[] = await Promise.all(
    selection.targets.map(async (target) => ({ target, result: await target.act(name).catch((err: Error): OpResult => ({ ok: false, message: err.message })) })),
  );
  const ok = results.every((r) => r.result.ok);
  const parts = [...results.filter((r) => !r.result.ok), ...results.filter((r) => r.result.ok)].map(
    (r) => `${r.target.kind} ${r.target.name} (${r.target.service}/${r.target.instance}): ${r.result.ok ? '' : 'FAILED: '}${r.result.message}`,
  );
  return { ok, message: cut(`${name}: ${[...parts, ...selection.notes].join('; ')}`) };
}

const cut = (s: string) => (s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE - 1)}…` : s);
