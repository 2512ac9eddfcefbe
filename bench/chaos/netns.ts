/**
 * Hosts of their own for the partition scenario: one network namespace per host, each joined to a bridge
 * in the root namespace by a veth pair, on a private /24 that exists only inside this machine. faultline
 * listens on the bridge's address; cutting a host's link (its root-side veth down) partitions it.
 * Everything made here is removed at cleanup, even when the scenario fails.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Findings } from './harness.js';

export interface NetHost {
  name: string;
  netns: string;
  /** The host's address inside its namespace. */
  address: string;
  /** The root-side end of its link. */
  link: string;
}

export interface Network {
  /** faultline's address on the bridge. */
  gateway: string;
  hosts: NetHost[];
  cut(h: NetHost): void;
  heal(h: NetHost): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** Whether this process may make namespaces (root with `ip`); the reason when not. */
export function netnsProblem(): string | undefined {
  try {
    const probe = `flcprobe${randomBytes(2).toString('hex')}`;
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
    return undefined;
  } catch (err) {
    return `cannot make network namespaces here: ${(err as Error).message.split('\n')[0]}`;
  }
}

export function makeNetwork(f: Findings, hostNames: string[]): Network {
  const tag = randomBytes(2).toString('hex');
  const subnet = `10.231.${1 + (parseInt(tag, 16) % 250)}`;
  const bridge = `fc${tag}br`;
  const hosts: NetHost[] = [];
  f.onCleanup(() => {
    for (const h of hosts) {
      try { ip('link', 'del', h.link); } catch { /* gone with its namespace */ }
      try { ip('netns', 'del', h.netns); } catch { /* never made */ }
    }
    try { ip('link', 'del', bridge); } catch { /* never made */ }
  });
  ip('link', 'add', bridge, 'type', 'bridge');
  ip('addr', 'add', `${subnet}.1/24`, 'dev', bridge);
  ip('link', 'set', bridge, 'up');
  hostNames.forEach((name, i) => {
    const h: NetHost = { name, netns: `fc${tag}h${i}`, address: `${subnet}.${10 + i}`, link: `fc${tag}v${i}` };
    hosts.push(h);
    const peer = `fc${tag}p${i}`;
    ip('netns', 'add', h.netns);
    ip('link', 'add', h.link, 'type', 'veth', 'peer', 'name', peer);
    ip('link', 'set', peer, 'netns', h.netns);
    ip('link', 'set', h.link, 'master', bridge);
    ip('link', 'set', h.link, 'up');
    ip('-n', h.netns, 'addr', 'add', `${h.address}/24`, 'dev', peer);
    ip('-n', h.netns, 'link', 'set', peer, 'up');
    ip('-n', h.netns, 'link', 'set', 'lo', 'up');
  });
  return {
    gateway: `${subnet}.1`,
    hosts,
    cut: (h) => ip('link', 'set', h.link, 'down'),
    heal: (h) => ip('link', 'set', h.link, 'up'),
  };
}
