/**
 * Rules: the user's file overrides, disables and adds to the built-in rules; bad rules are refused with
 * the file, line, rule and field; a running faultline upgrades its rules live (file watch or API) and
 * keeps the old rules when the new ones are invalid.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RuleSet, RulesError } from '../../src/rules/index.js';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

const dir = tempDir('faultline-rules-');
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const exitFacts = (code: number, extra: Record<string, unknown> = {}) => ({
  target: { service: 'api', instance: 'api-1', version: '1.0.0' },
  exit: { code, time: Date.parse('2026-01-01T12:00:00Z'), class: `exit code ${code}` },
  exception: {},
  memory: {},
  service: { abnormal_exits: 1 },
  deploy: { replaced: false },
  ...extra,
});

describe('rules', () => {
  after(() => removeDir(dir));

  it('built-in rules classify exits; the first matching rule by priority decides', () => {
    const rules = RuleSet.load();
    assert.equal(rules.decide('exit', exitFacts(0))?.kind, 'none');
    assert.equal(rules.decide('exit', exitFacts(1))?.kind, 'crash');
    assert.equal(rules.decide('exit', { ...exitFacts(137), exit: { code: 137, signal: 'SIGKILL', class: 'signal SIGKILL' }, memory: { near_limit: true } })?.kind, 'oom');
    assert.equal(rules.decide('exit', { ...exitFacts(1), service: { abnormal_exits: 3 } })?.kind, 'crash_loop');
    assert.match(rules.version, /^[0-9a-f]{12}$/);
  });

  it('a user file overrides a rule in part, disables one and adds one', () => {
    const path = file(
      'custom.yaml',
      [
        'rules:',
        '  - id: crash',
        '    explanation: "{{target.instance}} died ({{exit.class}})"',
        '  - id: crash-loop',
        '    enabled: false',
        '  - id: exit-3-is-config-error',
        '    on: exit',
        '    kind: crash',
        '    priority: 500',
        '    when: { exit.code: 3 }',
        '    explanation: "{{target.instance}} refused its configuration (exit 3)"',
      ].join('\n'),
    );
    const rules = RuleSet.load(path);
    assert.equal(rules.decide('exit', exitFacts(1))?.explanation, 'api-1 died (exit code 1)');
    assert.equal(rules.decide('exit', { ...exitFacts(1), service: { abnormal_exits: 5 } })?.kind, 'crash', 'crash-loop disabled');
    assert.equal(rules.decide('exit', exitFacts(3))?.ruleId, 'exit-3-is-config-error');
    assert.notEqual(rules.version, RuleSet.load().version);
    assert.deepEqual(rules.sources.slice(1), [path]);
  });

  it('refuses bad rules naming the file, line, rule and field', () => {
    const cases: [string, RegExp][] = [
      ['rules:\n  - id: mine\n    on: exit\n    kind: explode\n', /bad-0\.yaml:4: rule "mine": kind: /],
      ['rules:\n  - id: mine\n    on: exit\n    kind: crash\n    when: { exit.code: { between: [1, 2] } }\n', /bad-1\.yaml:5: rule "mine": when/],
      ['rules:\n  - id: mine\n    on: someday\n    kind: crash\n', /rule "mine": on: /],
      ['rules:\n  - id: mine\n    kind: crash\n', /bad-3\.yaml:2: rule "mine": on: /],
      ['rules:\n  - id: crash\n    explanation: "{{#if x}}unclosed"\n', /rule "crash": explanation: invalid template/],
      ['rules:\n  - id: mine\n    on: exit\n    kind: crash\n    when: { exit.reason: { matches: "(" } }\n', /invalid regular expression/],
      ['settings:\n  window: forever\n', /bad-6\.yaml:2: .*window: a duration like/],
    ];
    cases.forEach(([text, expected], i) => {
      const path = file(`bad-${i}.yaml`, text);
      assert.throws(() => RuleSet.load(path), (err: Error) => err instanceof RulesError && expected.test(err.message), `case ${i}`);
    });
  });

  describe('live upgrade in a running faultline', () => {
    let fl: RunningFaultline;
    let rulesFile: string;

    before(async () => {
      rulesFile = file('live.yaml', 'rules: []\n');
      const config = file('live-config.yaml', `rules:\n  file: ${rulesFile}\n`);
      fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
    });
    after(async () => {
      await fl?.kill9();
    });

    const getRules = async () => (await (await fetch(`${fl.http}/api/v1/rules`)).json()) as { version: string; last_reload: { ok: boolean; errors: string[]; trigger: string } };

    it('rejects an invalid new version with its errors and keeps the old rules', async () => {
      const before = await getRules();
      writeFileSync(rulesFile, 'rules:\n  - id: crash\n    kind: meltdown\n');
      const res = await fetch(`${fl.http}/api/v1/rules/reload`, { method: 'POST' });
      assert.equal(res.status, 422);
      const body = (await res.json()) as { ok: boolean; errors: string[]; version: string };
      assert.equal(body.ok, false);
      assert.match(body.errors.join('\n'), /live\.yaml:3: rule "crash": kind: /);
      assert.equal(body.version, before.version, 'the old version keeps running');
      assert.equal((await getRules()).version, before.version);
    });

    it('picks up a changed file by itself, and new faults record the new rules version', async () => {
      const before = await getRules();
      writeFileSync(rulesFile, 'rules:\n  - id: crash\n    explanation: "{{target.instance}} fell over with {{exit.class}}"\n');
      const after = await eventually(async () => {
        const r = await getRules();
        return r.version !== before.version ? r : undefined;
      }, 10_000, 'the file change to be picked up');
      assert.equal(after.last_reload.ok, true);
      assert.equal(after.last_reload.trigger, 'file');
      const body = {
        resourceLogs: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'reloaded' } }, { key: 'service.instance.id', value: { stringValue: 'r-1' } }] },
            scopeLogs: [{ logRecords: [{ timeUnixNano: `${Date.now()}000000`, eventName: 'process.exit', attributes: [{ key: 'process.exit.code', value: { intValue: 2 } }] }] }],
          },
        ],
      };
      const res = await fetch(`${fl.otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(res.status, 200);
      const fault = await eventually(async () => {
        const list = ((await (await fetch(`${fl.http}/api/v1/faults?service=reloaded`)).json()) as { faults: { explanation: string; rule: { id: string; version: string } }[] }).faults;
        return list[0];
      }, 10_000, 'the fault');
      assert.equal(fault.explanation, 'r-1 fell over with exit code 2');
      assert.deepEqual(fault.rule, { id: 'crash', version: after.version });
    });
  });
});
