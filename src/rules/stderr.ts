/**
 * The exception a dying process printed on stderr, for exits that carry none of their own: a command under
 * `faultline run` that is not a Node app, or a Node app that died before its exporter flushed. Without it
 * every such crash would be only its exit code, and different bugs would share one signature.
 *
 * Recognised: Node.js (`TypeError: …` and its `at` frames, after the `file:line` / source / caret lines Node
 * prints first), Python (`Traceback (most recent call last):` … `ValueError: …`), the JVM (`Exception in
 * thread "main" java.lang.X: …` and its `\tat` frames) and Go (`panic: …` or `fatal error: …` and the
 * goroutine's frames). The tail may have lost its start; what is recognised is the last exception in it.
 */

export interface StderrException {
  type: string;
  message: string;
  /** The exception as the runtime printed it: its header and frames, in the form parseFrames reads. */
  stacktrace: string;
}

interface Found extends StderrException {
  /** The line it starts on: the latest one found is the one the process died of. */
  line: number;
}

const NODE_FRAME = /^\s+at /;
const NODE_HEADER = /^(?:Uncaught )?([A-Za-z_$][\w$.]*)(?: \[[\w.-]+\])?(?:: ?(.*))?$/;
const PY_TRACEBACK = /^Traceback \(most recent call last\):\s*$/;
const PY_EXCEPTION = /^([A-Za-z_][\w.]*)(?:: ?(.*))?$/;
const JVM_HEADER = /^Exception in thread "[^"]*" ([\w$.]+)(?:: ?(.*))?$/;
const JVM_FOLLOW = /^\s+at |^\s+\.\.\. \d+ more|^Caused by: |^\s+Suppressed: /;
const GO_PANIC = /^(panic|fatal error): (.*?)(?: \[recovered\])?$/;
const GO_GOROUTINE = /^goroutine \d+ \[[^\]]*\]:\s*$/;

/** The last exception printed in a stderr tail, or undefined when it holds none that is recognised. */
export function exceptionFromStderr(tail: string): StderrException | undefined {
  if (!tail) return undefined;
  const lines = tail.replace(/\r\n?/g, '\n').split('\n');
  const found = [node(lines), python(lines), jvm(lines), go(lines)].filter((f): f is Found => f !== undefined);
  if (found.length === 0) return undefined;
  const { type, message, stacktrace } = found.reduce((a, b) => (b.line > a.line ? b : a));
  return { type, message: message.trim(), stacktrace };
}

/**
 * Node prints the error's stack: a header (possibly several message lines) right above its `at` frames.
 * The last block of frames under a header at the line's start is the error; an indented one is a `[cause]`
 * or an aggregated error printed inside it.
 */
function node(lines: string[]): Found | undefined {
  for (let firstFrame = lines.length - 1; firstFrame > 0; firstFrame--) {
    if (!NODE_FRAME.test(lines[firstFrame]) || NODE_FRAME.test(lines[firstFrame - 1])) continue;
    // The message runs up from the frames to the blank line Node leaves after its caret (or the tail's start).
    let start = firstFrame - 1;
    while (start > 0 && lines[start - 1].trim() !== '' && !NODE_FRAME.test(lines[start - 1])) start--;
    const m = NODE_HEADER.exec(lines[start]);
    if (!m) continue;
    let end = firstFrame;
    while (end < lines.length && NODE_FRAME.test(lines[end])) end++;
    const message = [m[2] ?? '', ...lines.slice(start + 1, firstFrame)].join('\n');
    // The error's own properties follow its last frame (`    at f (file:1:2) {`): not part of the stack.
    const stacktrace = lines.slice(start, end).join('\n').replace(/ \{$/, '');
    return { line: start, type: m[1], message, stacktrace };
  }
  return undefined;
}

/** Python prints its frames first and the exception last; a chained exception's traceback comes later. */
function python(lines: string[]): Found | undefined {
  let tb = -1;
  for (let i = lines.length - 1; i >= 0; i--) if (PY_TRACEBACK.test(lines[i])) { tb = i; break; }
  if (tb < 0) return undefined;
  for (let i = tb + 1; i < lines.length; i++) {
    if (/^\s/.test(lines[i]) || lines[i] === '') continue;
    const m = PY_EXCEPTION.exec(lines[i]);
    if (!m) return undefined;
    return { line: tb, type: m[1], message: m[2] ?? '', stacktrace: lines.slice(tb, i + 1).join('\n') };
  }
  return undefined;
}

function jvm(lines: string[]): Found | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = JVM_HEADER.exec(lines[i]);
    if (!m) continue;
    let end = i + 1;
    while (end < lines.length && JVM_FOLLOW.test(lines[end])) end++;
    const header = m[2] === undefined ? m[1] : `${m[1]}: ${m[2]}`;
    return { line: i, type: m[1], message: m[2] ?? '', stacktrace: [header, ...lines.slice(i + 1, end)].join('\n') };
  }
  return undefined;
}

/** Go prints `panic: …`, then the goroutine that panicked: function lines, each with a `\tfile:line` below. */
function go(lines: string[]): Found | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = GO_PANIC.exec(lines[i]);
    if (!m) continue;
    const g = lines.findIndex((l, j) => j > i && GO_GOROUTINE.test(l));
    if (g < 0) return undefined;
    let end = g + 1;
    while (end < lines.length && lines[end].trim() !== '') end++;
    return { line: i, type: m[1], message: m[2], stacktrace: [lines[i], ...lines.slice(g, end)].join('\n') };
  }
  return undefined;
}
