import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { exceptionFromStderr, fingerprint, inAppFrames } from '../../src/rules/index.js';
import { removeDir, tempDir } from '../support/faultline.js';

const dir = tempDir('faultline-stderr-');
after(() => removeDir(dir));

/** Runs a real program and returns what it printed on stderr as it died. */
function stderrOf(command: string, file: string, source: string, args: string[] = []): string {
  const path = join(dir, file);
  writeFileSync(path, source);
  const r = spawnSync(command, [path, ...args], { encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(r.status, 0, `${file} should fail`);
  return r.stderr;
}

const signatureOf = (stderr: string) => {
  const e = exceptionFromStderr(stderr);
  assert.ok(e, `an exception in:\n${stderr}`);
  return fingerprint({ kind: 'crash', exceptionType: e.type, message: e.message, stacktrace: e.stacktrace });
};

const NODE_APP = `
function computeTotal(order) { return order.items.reduce((s, i) => s + i.price, 0) + order.discount.total; }
function applyDiscount(p) { return new Array(p - 200); }
const which = process.argv[2];
try {
  if (which === 'type') computeTotal({ items: [{ price: Number(process.argv[3]) }] });
  if (which === 'range') applyDiscount(Number(process.argv[3]));
} catch (err) {
  // What the Node collector would have sent as the exception, had it flushed.
  process.stdout.write(JSON.stringify({ type: err.name, message: err.message, stacktrace: err.stack }));
  throw err;
}
`;

describe('exceptions read from a dying process\u2019s stderr', () => {
  it('Node: the error and its frames, past the file:line, source and caret lines; the same fingerprint as the reported exception', () => {
    const path = join(dir, 'app.js');
    writeFileSync(path, NODE_APP);
    const run = (...args: string[]) => spawnSync(process.execPath, [path, ...args], { encoding: 'utf8', timeout: 30_000 });
    const t1 = run('type', '3');
    assert.match(t1.stderr, /^\s+\^$/m, "Node's caret header is there");
    const e = exceptionFromStderr(t1.stderr)!;
    assert.equal(e.type, 'TypeError');
    assert.equal(e.message, "Cannot read properties of undefined (reading 'total')");
    assert.equal(inAppFrames(e.stacktrace)[0], 'computeTotal (app.js)');

    const reported = JSON.parse(t1.stdout) as { type: string; message: string; stacktrace: string };
    const fromSpan = fingerprint({ kind: 'crash', exceptionType: reported.type, message: reported.message, stacktrace: reported.stacktrace });
    assert.equal(signatureOf(t1.stderr).fingerprint, fromSpan.fingerprint, 'a late exception span and the stderr agree');

    assert.equal(signatureOf(run('type', '17').stderr).fingerprint, signatureOf(t1.stderr).fingerprint, 'the same bug twice');
    const range = exceptionFromStderr(run('range', '10').stderr)!;
    assert.equal(range.type, 'RangeError');
    assert.notEqual(signatureOf(run('range', '10').stderr).fingerprint, signatureOf(t1.stderr).fingerprint, 'another bug');
  });

  it('Node: an error with a cause and properties is the outer error, its message and frames alone', () => {
    const source = `function connect() { const e = new Error('connect ECONNREFUSED 127.0.0.1:5432'); e.code = 'ECONNREFUSED'; return e; }\nfunction start() { throw new Error('cannot start', { cause: connect() }); }\nstart();\n`;
    const stderr = stderrOf(process.execPath, 'cause.js', source);
    assert.match(stderr, /\[cause\]: Error: connect ECONNREFUSED/);
    const e = exceptionFromStderr(stderr)!;
    assert.deepEqual([e.type, e.message], ['Error', 'cannot start']);
    assert.deepEqual(inAppFrames(e.stacktrace), ['start (cause.js)', 'Object.<anonymous> (cause.js)']);
  });

  it('Python: the last traceback\u2019s exception and frames, not the library\u2019s', () => {
    const source = `import json, sys\ndef load(v):\n    return int(v)\ndef parse(v):\n    return json.loads(v)\n(load if sys.argv[1] == 'int' else parse)(sys.argv[2])\n`;
    const a = stderrOf('python3', 'job.py', source, ['int', 'abc']);
    const e = exceptionFromStderr(a)!;
    assert.equal(e.type, 'ValueError');
    assert.equal(e.message, "invalid literal for int() with base 10: 'abc'");
    assert.deepEqual(inAppFrames(e.stacktrace), ['load (job.py)', '<module> (job.py)']);
    assert.equal(signatureOf(stderrOf('python3', 'job.py', source, ['int', 'xyz'])).fingerprint, signatureOf(a).fingerprint);
    const json = exceptionFromStderr(stderrOf('python3', 'job.py', source, ['json', '{']))!;
    assert.equal(json.type, 'json.decoder.JSONDecodeError');
    assert.deepEqual(inAppFrames(json.stacktrace), ['parse (job.py)', '<module> (job.py)'], 'json\u2019s own frames are not the app\u2019s');
  });

  it('Python: a chained exception is the last one raised', () => {
    const source = `def f():\n    try:\n        {}['k']\n    except KeyError:\n        raise RuntimeError('config missing k')\nf()\n`;
    const e = exceptionFromStderr(stderrOf('python3', 'chain.py', source))!;
    assert.equal(e.type, 'RuntimeError');
    assert.equal(e.message, "config missing k");
  });

  it('JVM: the thread\u2019s exception and its application frames', () => {
    const tail = [
      'starting worker 3',
      'Exception in thread "main" java.lang.NumberFormatException: For input string: "abc"',
      '\tat java.base/java.lang.NumberFormatException.forInputString(NumberFormatException.java:67)',
      '\tat java.base/java.lang.Integer.parseInt(Integer.java:668)',
      '\tat com.acme.Import.parse(Import.java:2)',
      '\tat com.acme.Import.main(Import.java:3)',
      'Caused by: java.io.IOException: closed',
      '\t... 2 more',
    ].join('\n');
    const e = exceptionFromStderr(tail)!;
    assert.equal(e.type, 'java.lang.NumberFormatException');
    assert.equal(e.message, 'For input string: "abc"');
    assert.deepEqual(inAppFrames(e.stacktrace), ['Import.parse (com.acme.Import)', 'Import.main (com.acme.Import)']);
  });

  it('Go: a panic and the panicking goroutine\u2019s frames, without the runtime\u2019s', () => {
    const tail = (index: number, line: number) => [
      `panic: runtime error: index out of range [${index}] with length 3`,
      '',
      'goroutine 1 [running]:',
      'main.(*Store).lookup(0xc000012345, 0x5)',
      `\t/home/ci/app/store.go:${line} +0x1d`,
      'main.main()',
      '\t/home/ci/app/main.go:20 +0x45',
      'exit status 2',
    ].join('\n');
    const e = exceptionFromStderr(tail(5, 12))!;
    assert.equal(e.type, 'panic');
    assert.equal(e.message, 'runtime error: index out of range [5] with length 3');
    assert.deepEqual(inAppFrames(e.stacktrace), ['main.(*Store).lookup (store.go)', 'main.main (main.go)']);
    assert.equal(signatureOf(tail(7, 14)).fingerprint, signatureOf(tail(5, 12)).fingerprint);
    const deadlock = exceptionFromStderr('fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\nmain.main()\n\t/app/main.go:9 +0x2d\n')!;
    assert.equal(deadlock.type, 'fatal error');
    assert.notEqual(signatureOf(tail(5, 12)).fingerprint, fingerprint({ kind: 'crash', exceptionType: deadlock.type, message: deadlock.message, stacktrace: deadlock.stacktrace }).fingerprint);
  });

  it('nothing recognised: no exception (the exit code alone decides)', () => {
    assert.equal(exceptionFromStderr(''), undefined);
    assert.equal(exceptionFromStderr('error: could not open /etc/app.conf\nshutting down'), undefined);
    assert.equal(exceptionFromStderr('\tat com.acme.X.y(X.java:3)\n    at f (/a/b.js:1:2)'), undefined, 'frames whose header was cut off');
    assert.equal(exceptionFromStderr('FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory'), undefined);
  });

  it('the last exception in the tail is the one the process died of', () => {
    const tail = 'Traceback (most recent call last):\n  File "/app/a.py", line 1, in <module>\nKeyError: \'x\'\nretrying\nException in thread "main" java.lang.IllegalStateException: done\n\tat com.acme.Main.main(Main.java:5)';
    assert.equal(exceptionFromStderr(tail)!.type, 'java.lang.IllegalStateException');
  });
});
