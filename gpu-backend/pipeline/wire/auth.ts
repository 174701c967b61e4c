// Stage-connection handshake: before any other frame, both ends of every driver->stage and stage->stage connection
// prove they hold the group secret (HMAC-SHA256 challenge-response, a fresh nonce from each side, so neither proof can
// be replayed on another connection). The messages travel as 'auth' frames (shared/frame.ts); payload layouts, bytes:
//
//   CHALLENGE  stage -> client   0 type u8 = 1   1 stage nonce (32)                                              = 33
//   PROOF      client -> stage   0 type u8 = 2   1 role u8 (1 driver, 2 peer)   2 stage u16 (the stage it means
//                                to reach)   4 id u32 (driver: its origin; peer: its own stage index)
//                                8 client nonce (32)   40 mac (32)                                               = 72
//   ACCEPT     stage -> client   0 type u8 = 3   1 mac (32)                                                      = 33
//
//   PROOF mac  = HMAC(secret, "uvit-stage-auth/1 client" | stage nonce | PROOF[0..40))
//   ACCEPT mac = HMAC(secret, "uvit-stage-auth/1 stage"  | stage nonce | PROOF[0..72))
//
// A stage answers a bad proof, or any frame other than a proof, by closing the connection: an outsider learns nothing
// but that the port speaks this protocol. The secret comes from the environment or a 0600 file, never a flag.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { type FrameMeta, NO_JOB, NO_SEGMENT } from '../../../shared/frame.ts';
import type { Tensor } from '../../../shared/tensor.ts';

export const SECRET_ENV = 'UVIT_GROUP_SECRET';
export const SECRET_FILE_ENV = 'UVIT_GROUP_SECRET_FILE';
const MIN_SECRET_BYTES = 32;
const NONCE_BYTES = 32;
const MAC_BYTES = 32;
export const AUTH_BYTES = { challenge: 1 + NONCE_BYTES, proof: 8 + NONCE_BYTES + MAC_BYTES, accept: 1 + MAC_BYTES };
/** the largest auth payload: what a stage reads from a connection that has not proved itself */
export const MAX_AUTH_BYTES = AUTH_BYTES.proof;

export type AuthRole = 'driver' | 'peer';
const ROLE_CODES: Record<AuthRole, number> = { driver: 1, peer: 2 };

/** The group's shared secret. Printing it (logs, JSON, util.inspect) shows a placeholder, never the bytes. */
export class GroupSecret {
  readonly #key: Buffer;
  constructor(key: string | Uint8Array) {
    const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
    if (k.length < MIN_SECRET_BYTES) throw new Error(`group secret: needs at least ${MIN_SECRET_BYTES} bytes, got ${k.length}`);
    this.#key = k;
  }

  /** a fresh random secret (spawned groups, `npm start`) */
  static generate(): GroupSecret {
    return new GroupSecret(randomBytes(32).toString('hex'));
  }

  /** the value to hand to a child process's environment (SECRET_ENV) */
  reveal(): string {
    return this.#key.toString('utf8');
  }

  mac(label: string, ...parts: Uint8Array[]): Buffer {
    const h = createHmac('sha256', this.#key).update(label);
    for (const p of parts) h.update(p);
    return h.digest();
  }

  toString(): string {
    return '[group secret]';
  }
  toJSON(): string {
    return '[group secret]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[group secret]';
  }
}

/**
 * The group secret from the environment: the file named by UVIT_GROUP_SECRET_FILE (must not be readable by group or
 * others: 0600 or 0400) or the value of UVIT_GROUP_SECRET. Throws a message that says how to provide one.
 */
export function groupSecretFromEnv(env: NodeJS.ProcessEnv = process.env): GroupSecret {
  const file = env[SECRET_FILE_ENV];
  if (file) {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) {
      throw new Error(`${SECRET_FILE_ENV}: ${file} has mode 0${mode.toString(8)}; the group secret file must be readable by its owner only (chmod 600)`);
    }
    return new GroupSecret(readFileSync(file, 'utf8').trim());
  }
  const v = env[SECRET_ENV];
  if (v) return new GroupSecret(v);
  throw new Error(`no group secret: set ${SECRET_FILE_ENV} to a file (mode 0600) holding it, or ${SECRET_ENV} ` +
    `(at least ${MIN_SECRET_BYTES} bytes, e.g. \`openssl rand -hex 32\`); every stage and the driver of a group need the same one`);
}

/** header of an auth frame (no job, no tensor routing) */
export const AUTH_META: FrameMeta = { kind: 'auth', jobId: NO_JOB, origin: 0, step: 0, microBatch: 0, segment: NO_SEGMENT, role: 'none', roleIndex: 0 };

/** an auth message as the frame payload */
export const authTensor = (bytes: Uint8Array): Tensor => ({ dtype: 'uint8', dims: [bytes.length], data: bytes });

export class AuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

function expectLength(what: string, type: number, b: Uint8Array, n: number): void {
  if (b.length !== n) throw new AuthError(`${what}: ${b.length} bytes, expected ${n}`);
  if (b[0] !== type) throw new AuthError(`${what}: message type ${b[0]}, expected ${type}`);
}

// ---------------------------------------------------------------- the stage's side

/** the stage's first message on a new connection; keep the nonce for checkProof */
export function encodeChallenge(): { bytes: Uint8Array; nonce: Uint8Array } {
  const nonce = randomBytes(NONCE_BYTES);
  const bytes = new Uint8Array(AUTH_BYTES.challenge);
  bytes[0] = 1;
  bytes.set(nonce, 1);
  return { bytes, nonce };
}

export interface Proven {
  role: AuthRole;
  /** driver: its origin; peer: its stage index */
  id: number;
  /** the ACCEPT payload to send back */
  accept: Uint8Array;
}

/** verify a client's PROOF against this stage's nonce and index (constant-time MAC comparison) */
export function checkProof(secret: GroupSecret, stageNonce: Uint8Array, stage: number, proof: Uint8Array): Proven {
  expectLength('auth proof', 2, proof, AUTH_BYTES.proof);
  const v = new DataView(proof.buffer, proof.byteOffset, proof.length);
  const want = secret.mac('uvit-stage-auth/1 client', stageNonce, proof.subarray(0, 40));
  if (!timingSafeEqual(want, proof.subarray(40))) throw new AuthError('auth proof: wrong MAC (not this group\'s secret)');
  const role = (Object.keys(ROLE_CODES) as AuthRole[]).find((r) => ROLE_CODES[r] === proof[1]);
  if (!role) throw new AuthError(`auth proof: unknown role code ${proof[1]}`);
  const target = v.getUint16(2, true);
  if (target !== stage) throw new AuthError(`auth proof: meant for stage ${target}, this is stage ${stage}`);
  const accept = new Uint8Array(AUTH_BYTES.accept);
  accept[0] = 3;
  accept.set(secret.mac('uvit-stage-auth/1 stage', stageNonce, proof), 1);
  return { role, id: v.getUint32(4, true), accept };
}

// ---------------------------------------------------------------- the client's side

export interface ProofRequest {
  role: AuthRole;
  /** the stage index the client means to reach */
  stage: number;
  /** driver: its origin; peer: its own stage index */
  id: number;
}

/** answer a stage's CHALLENGE; returns the PROOF and the ACCEPT the stage must send back */
export function answerChallenge(secret: GroupSecret, challenge: Uint8Array, req: ProofRequest): { proof: Uint8Array; expectAccept: Uint8Array } {
  expectLength('auth challenge', 1, challenge, AUTH_BYTES.challenge);
  const stageNonce = challenge.subarray(1);
  const proof = new Uint8Array(AUTH_BYTES.proof);
  const v = new DataView(proof.buffer);
  proof[0] = 2;
  proof[1] = ROLE_CODES[req.role];
  v.setUint16(2, req.stage, true);
  v.setUint32(4, req.id >>> 0, true);
  proof.set(randomBytes(NONCE_BYTES), 8);
  proof.set(secret.mac('uvit-stage-auth/1 client', stageNonce, proof.subarray(0, 40)), 40);
  const expectAccept = new Uint8Array(AUTH_BYTES.accept);
  expectAccept[0] = 3;
  expectAccept.set(secret.mac('uvit-stage-auth/1 stage', stageNonce, proof), 1);
  return { proof, expectAccept };
}

/** the stage proved the secret too (constant-time) */
export function checkAccept(expect: Uint8Array, accept: Uint8Array): void {
  expectLength('auth accept', 3, accept, AUTH_BYTES.accept);
  if (!timingSafeEqual(expect, accept)) throw new AuthError('auth accept: wrong MAC (the stage does not hold this group\'s secret)');
}
