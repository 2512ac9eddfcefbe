/**
 * The native `faultline run`: the wrapper's supervising process in C (collectors/run/native/, built into
 * dist/native/ by `npm run build` and on install when a C compiler is there). The Node CLI entry replaces
 * itself with it (exec: same pid, nothing of Node stays resident), and runs the Node implementation in this
 * folder instead when it cannot: no binary (no compiler at install), an https:// endpoint (the native one
 * speaks plain HTTP only), or FAULTLINE_RUN_NATIVE=0. Help and usage errors come from the Node side, so they
 * read the same either way.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { parseRunArgs, UsageError } from './options.js';

export const NATIVE_WRAPPER = join(packageRoot, 'dist', 'native', 'faultline-run');
export const EXEC_ADDON = join(packageRoot, 'dist', 'native', 'exec.node');

type Exec = (file: string, argv: string[]) => never;

/** Why the Node implementation runs for this command line: null when the native one can. */
export function whyNotNative(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  files = { wrapper: NATIVE_WRAPPER, addon: EXEC_ADDON },
): { reason: string; notice: boolean } | null {
  if (env.FAULTLINE_RUN_NATIVE === '0') return { reason: 'FAULTLINE_RUN_NATIVE=0', notice: false };
  let opts;
  try {
    opts = parseRunArgs(argv, env);
  } catch (err) {
    if (err instanceof UsageError) return { reason: 'usage error', notice: false };
    throw err;
  }
  if (opts === 'help') return { reason: 'help', notice: false };
  if (/^https:/i.test(opts.otlpEndpoint) || /^https:/i.test(opts.url)) return { reason: 'https endpoint', notice: false };
  if (!existsSync(files.wrapper) || !existsSync(files.addon))
    return { reason: `the native wrapper is not built (${files.wrapper}: it needs a C compiler when faultline is built or installed)`, notice: true };
  return null;
}

/**
 * Replaces this process with the native wrapper when it can run `argv`, and never returns then. Returns
 * when the Node implementation is to run instead, after a one-line notice when that is a fallback.
 */
export function execNative(argv: string[]): void {
  const why = whyNotNative(argv);
  if (why) {
    if (why.notice) process.stderr.write(`faultline run: ${why.reason}; running the Node implementation\n`);
    return;
  }
  try {
    const exec = nativeExec();
    exec(NATIVE_WRAPPER, [NATIVE_WRAPPER, ...argv]);
  } catch (err) {
    process.stderr.write(`faultline run: cannot start the native wrapper (${(err as Error).message}); running the Node implementation\n`);
  }
}

function nativeExec(): Exec {
  // Node 22.15 and 23.11 have it built in; Node 20 needs the small addon built beside the wrapper.
  const builtin = (process as unknown as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof builtin === 'function') return (file, args) => builtin(file, args, process.env);
  const addon = { exports: {} as unknown };
  process.dlopen(addon as NodeJS.Module, EXEC_ADDON);
  return addon.exports as Exec;
}
