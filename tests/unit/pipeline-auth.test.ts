// The stage handshake's messages (gpu-backend/pipeline/wire/auth.ts) and where the group secret may come from.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AuthError, GroupSecret, SECRET_ENV, SECRET_FILE_ENV, answerChallenge, checkAccept, checkProof, encodeChallenge, groupSecretFromEnv,
} from '../../gpu-backend/pipeline/wire/auth.ts';

const dir = mkdtempSync(join(tmpdir(), 'stage-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const secret = GroupSecret.generate();

describe('stage handshake messages', () => {
  it('a proof made with the secret passes; both sides agree on the accept', () => {
    const ch = encodeChallenge();
    const { proof, expectAccept } = answerChallenge(secret, ch.bytes, { role: 'driver', stage: 1, id: 1234 });
    const p = checkProof(secret, ch.nonce, 1, proof);
    expect(p).toMatchObject({ role: 'driver', id: 1234 });
    expect(() => checkAccept(expectAccept, p.accept)).not.toThrow();
  });

  it('refuses a wrong secret, a replay on another connection, a changed field, another stage, a forged accept', () => {
    const ch = encodeChallenge();
    const { proof, expectAccept } = answerChallenge(secret, ch.bytes, { role: 'peer', stage: 0, id: 1 });
    const other = answerChallenge(GroupSecret.generate(), ch.bytes, { role: 'peer', stage: 0, id: 1 });
    expect(() => checkProof(secret, ch.nonce, 0, other.proof)).toThrow(/wrong MAC/);
    expect(() => checkProof(secret, encodeChallenge().nonce, 0, proof)).toThrow(/wrong MAC/); // fresh nonce per connection
    const asDriver = proof.slice();
    asDriver[1] = 1; // claim the driver role without re-signing
    expect(() => checkProof(secret, ch.nonce, 0, asDriver)).toThrow(/wrong MAC/);
    expect(() => checkProof(secret, ch.nonce, 1, proof)).toThrow(/meant for stage 0, this is stage 1/);
    expect(() => checkProof(secret, ch.nonce, 0, proof.subarray(0, 40))).toThrow(/40 bytes, expected 72/);
    const forged = checkProof(secret, ch.nonce, 0, proof).accept.slice();
    forged[5] ^= 1;
    expect(() => checkAccept(expectAccept, forged)).toThrow(AuthError);
  });
});

describe('group secret', () => {
  it('comes from a file only its owner can read, or the environment; never printed', () => {
    const file = join(dir, 'group-secret');
    writeFileSync(file, `${'ab'.repeat(32)}\n`, { mode: 0o644 });
    expect(() => groupSecretFromEnv({ [SECRET_FILE_ENV]: file })).toThrow(/mode 0644; .* readable by its owner only \(chmod 600\)/);
    chmodSync(file, 0o600);
    const s = groupSecretFromEnv({ [SECRET_FILE_ENV]: file });
    expect(s.reveal()).toBe('ab'.repeat(32));
    expect(`${s} ${JSON.stringify({ s })} ${inspect(s)}`).not.toContain('abab');
    expect(groupSecretFromEnv({ [SECRET_ENV]: 'cd'.repeat(16) }).reveal()).toBe('cd'.repeat(16));
    expect(() => groupSecretFromEnv({ [SECRET_ENV]: 'short' })).toThrow(/at least 32 bytes/);
    expect(() => groupSecretFromEnv({})).toThrow(/no group secret: set UVIT_GROUP_SECRET_FILE/);
  });

  it('a stage process without one refuses to start, and says how to give it one', () => {
    const env = { ...process.env };
    delete env[SECRET_ENV];
    delete env[SECRET_FILE_ENV];
    const uvit = fileURLToPath(new URL('../../bin/uvit.js', import.meta.url));
    const r = spawnSync(process.execPath, [uvit, 'stage', '--plan', join(dir, 'absent-plan.json'), '--index', '0'], { env, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no group secret: set UVIT_GROUP_SECRET_FILE to a file \(mode 0600\)/);
  });
});
