import { createHash } from 'node:crypto';

/**
 * Signature fingerprints: the same cause gives the same fingerprint on every instance, host and version;
 * different causes give different ones. The cause is the exception type plus the in-app stack frames (or,
 * without frames, the message), with everything volatile removed: ids, numbers, addresses, absolute paths,
 * line and column numbers, quoted values.
 */

export interface Frame {
  fn: string;
  file: string;
}

const V8_FRAME = /^\s*at (?:(?:async )?(.*?) \()?(.*?):\d+:\d+\)?\s*$/;
const V8_FRAME_NO_POS = /^\s*at (?:(?:async )?(.*?) \()?([^():]+)\)?\s*$/;
const PY_FRAME = /^\s*File "(.+?)", line \d+, in (.+)$/;
const JVM_FRAME = /^\s*at ([\w$.<>]+)\.([\w$<>]+)\(([^:)]+)(?::\d+)?\)\s*$/;
/** Go prints a frame on two lines: the function with its arguments, then a tab, its file and line. */
const GO_FUNC = /^(\S+?)\([^()]*\)$/;
const GO_FILE = /^\t(\S+\.go):\d+(?: \+0x[0-9a-f]+)?$/;

/** Frames of runtimes, dependencies and tooling: not the application's code. */
function isInApp(file: string): boolean {
  return !(
    file.includes('node_modules') ||
    file.startsWith('node:') ||
    file.startsWith('internal/') ||
    file === 'native' ||
    file === '<anonymous>' ||
    /(^|\/)(site-packages|dist-packages|lib\/python\d)/.test(file) ||
    /^(java|javax|jdk|sun|kotlin)\./.test(file) ||
    // Go: the module cache (dependencies) and the standard library's runtime.
    /\/pkg\/mod\/|\/src\/runtime\//.test(file)
  );
}

/** The last path segment with content hashes (bundle names like main.3f2a9c1b.js) removed. */
function normaliseFile(file: string): string {
  const base = file.replace(/^file:\/\//, '').split(/[\\/]/).pop() ?? file;
  return base.replace(/[.-][0-9a-f]{6,}(?=\.)/gi, '');
}

/** Parses V8 (Node), Python, JVM and Go stack traces into frames, innermost (where it was raised) first. */
export function parseFrames(stack: string): Frame[] {
  const frames: Frame[] = [];
  // Python prints the innermost frame last: its frames are gathered apart and turned round, so that the
  // frames a fingerprint keeps are the ones nearest the cause in every language.
  const python: Frame[] = [];
  let previous = '';
  for (const line of stack.split('\n')) {
    const goFile = GO_FILE.exec(line);
    const goFunc = goFile && GO_FUNC.exec(previous);
    previous = line;
    if (goFile && goFunc) {
      frames.push({ fn: goFunc[1].split('/').pop() ?? goFunc[1], file: goFile[1] });
      continue;
    }
    let m = V8_FRAME.exec(line) ?? V8_FRAME_NO_POS.exec(line);
    if (m && /^\s*at /.test(line)) {
      frames.push({ fn: (m[1] ?? '').trim() || '<anonymous>', file: (m[2] ?? '').trim() });
      continue;
    }
    if ((m = PY_FRAME.exec(line))) {
      python.push({ fn: m[2].trim(), file: m[1] });
      continue;
    }
    if ((m = JVM_FRAME.exec(line))) frames.push({ fn: `${m[1].split('.').pop()}.${m[2]}`, file: m[1] });
  }
  return [...python.reverse(), ...frames];
}

/** In-app frames, normalised: function names without volatile parts, files without paths. */
export function inAppFrames(stack: string, limit = 5): string[] {
  return parseFrames(stack)
    .filter((f) => isInApp(f.file))
    .slice(0, limit)
    .map((f) => `${normaliseText(f.fn)} (${normaliseFile(f.file)})`);
}

/** Removes the volatile parts of a message so that two occurrences of one cause read the same. */
export function normaliseText(text: string): string {
  return text
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>')
    .replace(/"[^"\n]*"|'[^'\n]*'|`[^`\n]*`/g, '<str>')
    .replace(/(?:[a-zA-Z]:)?(?:\/[\w.@~+-]+){2,}\/?/g, '<path>')
    .replace(/\b0x[0-9a-f]+\b/gi, '<hex>')
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, '<ip>')
    .replace(/\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b/gi, '<hex>')
    .replace(/\d+(?:\.\d+)?/g, '<n>')
    .replace(/\s+/g, ' ')
    .trim();
}

export interface Cause {
  kind: string;
  exceptionType?: string;
  message?: string;
  stacktrace?: string;
  /** For faults without an exception: the exit class (e.g. "signal SIGKILL", "code 1"), the failing peer, ... */
  detail?: string;
}

/** The normalised cause as text (shown to people) and its fingerprint (16 hex digits). */
export function fingerprint(cause: Cause): { fingerprint: string; normalised: string } {
  const frames = cause.stacktrace ? inAppFrames(cause.stacktrace) : [];
  const parts = [cause.kind];
  if (cause.exceptionType) parts.push(normaliseText(cause.exceptionType));
  if (frames.length > 0) parts.push(...frames);
  else if (cause.message) parts.push(normaliseText(cause.message));
  if (cause.detail) parts.push(normaliseText(cause.detail));
  const normalised = parts.join('\n');
  return { fingerprint: createHash('sha256').update(normalised).digest('hex').slice(0, 16), normalised };
}
