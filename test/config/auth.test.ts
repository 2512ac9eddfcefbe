/**
 * The auth section of the config: tokens with scopes, secrets from the file or the environment, and every
 * mistake refused at load with the file, line and field — and the Auth built from it compares and scopes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Auth, sessionCookie } from '../../src/api/index.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { removeDir, tempDir } from '../support/faultline.js';

const dir = tempDir('faultline-auth-config-');
const load = (name: string, yaml: string, env: Record<string, string> = {}) => {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return loadConfig({ file: path, env });
};
const refused = (name: string, yaml: string, env: Record<string, string> = {}): string => {
  try {
    load(name, yaml, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  return assert.fail('expected the config to be refused');
};

describe('auth config', () => {
  after(() => removeDir(dir));

  it('reads inline and environment secrets; a non-loopback host is then allowed', () => {
    const { config } = load(
      'ok.yaml',
      'server:\n  host: 0.0.0.0\nauth:\n  tokens:\n    - { name: ci, token: inline-secret-0123456789, scopes: [read] }\n    - { name: agents, token_env: AGENT_TOKEN, scopes: [ingest, read] }\n',
      { AGENT_TOKEN: 'from-the-environment-0123' },
    );
    assert.deepEqual(
      config.auth.tokens.map((t) => [t.name, t.token, t.scopes]),
      [
        ['ci', 'inline-secret-0123456789', ['read']],
        ['agents', 'from-the-environment-0123', ['ingest', 'read']],
      ],
    );
  });

  it('names the file, line and field of each mistake', () => {
    const both = refused('both.yaml', 'auth:\n  tokens:\n    - { name: a, token: inline-secret-0123456789, token_env: X, scopes: [read] }\n');
    assert.match(both, /both\.yaml:3: auth\.tokens\.0\.token: give either token or token_env, not both/);
    assert.match(refused('short.yaml', 'auth:\n  tokens:\n    - name: a\n      token: short\n      scopes: [read]\n'), /short\.yaml:4: auth\.tokens\.0\.token: a token of at least 16 characters/);
    assert.match(refused('scope.yaml', 'auth:\n  tokens:\n    - name: a\n      token: inline-secret-0123456789\n      scopes: [write]\n'), /scope\.yaml:5: auth\.tokens\.0\.scopes\.0: .*"ingest"\|"read"\|"admin"/);
    assert.match(
      refused('dup.yaml', 'auth:\n  tokens:\n    - { name: a, token: inline-secret-0123456789, scopes: [read] }\n    - { name: a, token: inline-secret-9876543210, scopes: [admin] }\n'),
      /auth\.tokens\.1\.name: duplicate token name "a"/,
    );
    const unset = refused('unset.yaml', 'auth:\n  tokens:\n    - name: agents\n      token_env: AGENT_TOKEN\n      scopes: [ingest]\n');
    assert.match(unset, /unset\.yaml:4: auth\.tokens\.0\.token_env: environment variable AGENT_TOKEN is not set \(token "agents"\)/);
    assert.match(refused('open.yaml', 'server:\n  host: 10.0.0.5\n'), /open\.yaml:2: server\.host: faultline binds to "10\.0\.0\.5".*no API tokens are configured/);
    assert.doesNotThrow(() => load('loopback.yaml', 'server:\n  host: 127.0.0.2\n'));
  });

  it('builds an Auth: constant-time lookup, admin implies read, header before cookie', () => {
    const auth = new Auth({ tokens: [{ name: 'ops', token: 'admin-secret-0123456789', scopes: ['admin'] }, { name: 'ci', token: 'read-secret-01234567890', scopes: ['read'] }] });
    const req = (headers: Record<string, string>) => ({ headers });
    assert.equal(auth.allows(req({ authorization: 'Bearer admin-secret-0123456789' }), 'read'), true, 'admin implies read');
    assert.equal(auth.allows(req({ authorization: 'Bearer admin-secret-0123456789' }), 'ingest'), false);
    assert.equal(auth.allows(req({ authorization: 'bearer read-secret-01234567890' }), 'admin'), false);
    assert.equal(auth.identify(req({ authorization: 'Bearer read-secret-0123456789X' })), null, 'a near miss is unknown');
    assert.equal(auth.identify(req({})), undefined);
    assert.equal(auth.identify(req({ authorization: 'Bearer read-secret-01234567890', cookie: 'faultline_token=admin-secret-0123456789' }))?.name, 'ci');
    assert.equal(auth.identify(req({ cookie: 'a=b; faultline_token=admin-secret-0123456789' }))?.via, 'cookie');
    assert.throws(() => auth.require(req({}), 'read'), (e: { status: number }) => e.status === 401);
    assert.throws(() => auth.require(req({ cookie: 'faultline_token=read-secret-01234567890' }), 'admin'), (e: { status: number; code: string }) => e.status === 403 && e.code === 'forbidden');
    assert.match(sessionCookie('s3cret', { secure: true }), /^faultline_token=s3cret; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
    assert.equal(new Auth({ tokens: [] }).allows(req({}), 'admin'), true, 'no tokens: loopback callers may do everything');
  });
});
