/**
 * signature.regressed: the moment a known signature regresses (a person marked it resolved and it is
 * back; or a service it was seen in is back with it in a new version after all its faults were resolved),
 * told once per regression to the receivers its fault routes to. The rule on its own, then the engine
 * against the real store with the person's decision made through the same reader the API uses.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { EscalationSchema } from '../../src/escalate/config.js';
import { Escalator, Silences, type EventSink } from '../../src/escalate/index.js';
import type { Fault } from '../../src/faults/index.js';
import { regression, serviceVersion, SignatureReader, type SignatureHistory, type UserState } from '../../src/faults/signatures.js';
import { createLogger } from '../../src/log/index.js';
import { migrate, openStore, type Store } from '../../src/store/index.js';
import { removeDir, tempDir } from '../support/faultline.js';
import { faultFixture } from './fault-fixture.js';

/** A history of faults in `api` at these versions (or `service@version` for another service). */
const history = (versions: string[], open: number, lastAt: number): SignatureHistory => ({
  versions: new Set(versions.map((v) => (v.includes('@') ? serviceVersion(v.split('@')[0], v.split('@')[1]) : serviceVersion('api', v)))),
  open,
  lastAt,
});
const user = (state: UserState['state'], updatedAt: number): UserState => ({ state, updatedAt, author: 'ana', comment: 'fixed in 1.1' });
const api = (at: number, version: string) => ({ at, service: 'api', version });

describe('when a signature regresses', () => {
  it('its service back with it in a version it was never seen in, after all its faults were resolved', () => {
    assert.match(regression(history(['1.0'], 0, 100), undefined, api(200, '1.1'))!.reason, /back in api 1\.1 after all its faults were resolved \(seen before in 1\.0\)/);
    assert.equal(regression(history(['1.0'], 1, 100), undefined, api(200, '1.1')), undefined, 'not while an earlier fault is open');
    assert.equal(regression(history(['1.0', '1.1'], 0, 100), undefined, api(200, '1.1')), undefined, 'not in a version it was seen in');
    assert.equal(regression(history(['1.0'], 0, 100), undefined, api(200, '')), undefined, 'an unknown version is not a new one');
    assert.equal(regression(history(['billing@3.2'], 0, 100), undefined, api(200, '1.1')), undefined, 'the same bug in another service spreads, it does not come back');
  });

  it('back after a person marked it resolved: its first fault since, once', () => {
    const marked = user('resolved', 150);
    const r = regression(history(['1.0'], 0, 100), marked, api(200, '1.0'));
    assert.match(r!.reason, /back after it was marked resolved by ana at /);
    assert.equal(regression(history(['1.0'], 0, 200), marked, api(300, '1.0')), undefined, 'a second fault since is not a new regression');
    assert.equal(regression(history(['1.0'], 0, 100), marked, api(120, '2.0')), undefined, 'a fault that began before the decision');
  });

  it('never while muted; a regression key names it, whichever fault shows it', () => {
    assert.equal(regression(history(['1.0'], 0, 100), user('muted', 150), api(200, '2.0')), undefined);
    const a = regression(history(['1.0'], 0, 100), undefined, api(200, '2.0'));
    const b = regression(history(['1.0'], 0, 150), undefined, api(300, '2.0'));
    assert.equal(a!.key, b!.key);
  });
});

describe('signature.regressed from the engine', () => {
  let store: Store;
  let dir: string;
  const sent: Parameters<EventSink['enqueue']>[0] = [];
  let escalator: Escalator;

  before(async () => {
    dir = tempDir();
    const { config } = loadConfig({ env: { FAULTLINE_DATA_DIR: dir } });
    store = await openStore(config);
    await migrate(store, config.store.retention_days);
    const routes = EscalationSchema.parse({ routes: { receiver: 'chat', routes: [{ match: { service: 'billing' }, receiver: 'billing-team' }] } });
    escalator = new Escalator(routes, { enqueue: async (events) => void sent.push(...events) }, new Silences(store), store, createLogger('error'));
    const row = { fingerprint: 'cccccccccccccccc', kind: 'crash', exception_type: 'TypeError', title: 'TypeError: total of undefined', cause: 'crash\nTypeError', sample_message: '', sample_stack: '', first_seen: Date.now() - 60_000 };
    await store.insertJsonLines('signatures', `${JSON.stringify(row)}\n`, 'test-signature');
  });
  after(async () => {
    await store.close();
    removeDir(dir);
  });

  const fault = (over: Partial<Fault>): Fault =>
    faultFixture('e', {
      service: 'billing',
      instance: 'billing-1',
      version: '1.0',
      signature: 'cccccccccccccccc',
      startedAt: Date.now(),
      detectedAt: Date.now(),
      explanation: 'billing-1 exited with code 1 after an uncaught TypeError',
      ...over,
    });

  it('tells the routes of the fault, with the signature and why, once per regression', async () => {
    await escalator.recurred(fault({ version: '1.1' }), history(['billing@1.0'], 0, Date.now() - 30_000));
    await escalator.recurred(fault({ version: '1.1', instance: 'billing-2' }), history(['billing@1.0'], 0, Date.now() - 30_000));
    const told = sent.splice(0);
    assert.equal(told.length, 2, 'the same regression seen twice: the same event id (the outbox keeps one)');
    assert.equal(told[0].id, told[1].id);
    assert.deepEqual([told[0].type, told[0].endpoint], ['signature.regressed', 'billing-team']);
    assert.equal((told[0].data.signature as { title: string }).title, 'TypeError: total of undefined');
    assert.match(String(told[0].data.explanation), /^back in billing 1\.1 after all its faults were resolved/);

    await escalator.recurred(fault({ version: '1.0' }), history(['billing@1.0'], 0, Date.now() - 30_000));
    assert.deepEqual(sent.splice(0), [], 'a known version, no person said resolved: not a regression');
  });

  it('a person marks it resolved (as the API does): its next fault regresses it; muted, nothing is told', async () => {
    const reader = new SignatureReader(store);
    const lastFault = Date.now() - 10_000;
    await reader.setState('cccccccccccccccc', 'resolved', 'ana', 'fixed in 1.0.1');
    await new Promise((r) => setTimeout(r, 5));
    await escalator.recurred(fault({ version: '1.0' }), history(['billing@1.0'], 0, lastFault));
    const [told] = sent.splice(0);
    assert.equal(told?.type, 'signature.regressed');
    assert.match(String(told.data.explanation), /^back after it was marked resolved by ana/);

    await reader.setState('cccccccccccccccc', 'muted', 'ana', 'known, fix next sprint');
    await new Promise((r) => setTimeout(r, 5));
    await escalator.recurred(fault({ version: '3.0' }), history(['billing@1.0'], 0, lastFault));
    assert.deepEqual(sent.splice(0), []);
  });
});
