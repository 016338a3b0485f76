/**
 * Proof that the caller holds the private key of a public key they add: a signature, in OpenSSH's
 * SSHSIG format (`ssh-keygen -Y sign -n wharf-keys`), over a challenge the API gave them. Without it,
 * anyone could claim someone else's public key first (public keys are public: GitHub serves them) and
 * the real holder could no longer add it.
 *
 * The challenge is not remembered by the server: it names the user, the platform and the version of
 * the user's event stream when it was given, and the time. Only the key's holder can sign it; it
 * binds the user it was given to (bob cannot use alice's signature, nor alice bob's); and it goes
 * stale after 10 minutes or as soon as anything is recorded on the user's stream (adding the key
 * does that), so a signature adds one key once. Several controllers need no shared secret.
 *
 * The SSHSIG format: https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.sshsig
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import ssh2 from 'ssh2'

/** The SSHSIG namespace of a key proof (`ssh-keygen -Y sign -n wharf-keys`). */
export const KEY_PROOF_NAMESPACE = 'wharf-keys'
/** How long a challenge may be used, ms. */
export const CHALLENGE_TTL_MS = 10 * 60_000

/** What a challenge says. */
export interface Challenge {
  username: string
  /** The platform domain (`WHARF_DOMAIN`). */
  platform: string
  /** The version of the user's stream when the challenge was given. */
  version: number
  /** When it was given, ms since the epoch. */
  issuedAt: number
}

const CHALLENGE_RE = /^wharf-keys:v1 user=([a-z][a-z0-9_-]{0,31}) platform=([A-Za-z0-9.-]{1,253}) version=([0-9]{1,15}) issued=([0-9]{13})$/

/** The text of a challenge (one line, signed as given). */
export function challengeText(c: Challenge): string {
  return `wharf-keys:v1 user=${c.username} platform=${c.platform} version=${c.version} issued=${c.issuedAt}`
}

/** Reads a challenge's text; undefined when it is not one. */
export function parseChallenge(text: string): Challenge | undefined {
  const m = CHALLENGE_RE.exec(text)
  if (!m) return undefined
  return { username: m[1]!, platform: m[2]!, version: Number(m[3]), issuedAt: Number(m[4]) }
}

/**
 * Why challenge `text` cannot prove a key for `expected` (the caller, this platform, the stream's
 * version now) at `now`; undefined when it can.
 */
export function challengeProblem(text: string, expected: Omit<Challenge, 'issuedAt'>, now: number): string | undefined {
  const c = parseChallenge(text)
  if (!c) return 'the challenge is not one this API gives (GET /v1/keys/challenge)'
  if (c.username !== expected.username || c.platform !== expected.platform) return 'the challenge was given to another user or platform'
  if (c.issuedAt > now + 60_000 || now - c.issuedAt > CHALLENGE_TTL_MS) return 'the challenge has expired (it is good for 10 minutes): ask for a new one'
  if (c.version !== expected.version) return 'the challenge is stale (your account changed since it was given, or it was used): ask for a new one'
  return undefined
}

/** An SSH wire-format reader: uint32 lengths, big-endian. */
class Reader {
  #at = 0
  constructor(readonly buf: Buffer) {}
  get done(): boolean {
    return this.#at === this.buf.length
  }
  bytes(n: number): Buffer {
    if (n < 0 || this.#at + n > this.buf.length) throw new Error('truncated')
    const out = this.buf.subarray(this.#at, this.#at + n)
    this.#at += n
    return out
  }
  uint32(): number {
    return this.bytes(4).readUInt32BE(0)
  }
  string(): Buffer {
    return this.bytes(this.uint32())
  }
}

function sshString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b) : b
  const len = Buffer.alloc(4)
  len.writeUInt32BE(data.length)
  return Buffer.concat([len, data])
}

/** An SSH mpint as an unsigned big-endian integer of exactly `size` bytes. */
function fixed(mpint: Buffer, size: number): Buffer {
  let b = mpint
  while (b.length > 0 && b[0] === 0) b = b.subarray(1)
  if (b.length > size) throw new Error('integer too large')
  return Buffer.concat([Buffer.alloc(size - b.length), b])
}

const ECDSA: Record<string, { hash: string; size: number }> = {
  'ecdsa-sha2-nistp256': { hash: 'sha256', size: 32 },
  'ecdsa-sha2-nistp384': { hash: 'sha384', size: 48 },
  'ecdsa-sha2-nistp521': { hash: 'sha512', size: 66 },
}

/** Whether `sig` (an SSH signature: algorithm, blob) is `key`'s over `data`. */
function verifySsh(keyType: string, key: KeyObject, data: Buffer, sig: Buffer): boolean {
  const r = new Reader(sig)
  const algo = r.string().toString()
  const blob = r.string()
  if (!r.done) return false
  if (keyType === 'ssh-ed25519' && algo === 'ssh-ed25519') return cryptoVerify(null, data, key, blob)
  if (keyType === 'ssh-rsa' && (algo === 'rsa-sha2-512' || algo === 'rsa-sha2-256'))
    return cryptoVerify(algo === 'rsa-sha2-512' ? 'sha512' : 'sha256', data, key, blob)
  const ec = ECDSA[keyType]
  if (ec && algo === keyType) {
    const rs = new Reader(blob)
    const p1363 = Buffer.concat([fixed(rs.string(), ec.size), fixed(rs.string(), ec.size)])
    return cryptoVerify(ec.hash, data, { key, dsaEncoding: 'ieee-p1363' }, p1363)
  }
  return false
}

/**
 * Checks an armored SSH signature (`-----BEGIN SSH SIGNATURE-----`) of `message` in `namespace` by
 * the public key `openssh` (`<type> <base64>`). Answers undefined when it holds, else why not.
 */
export function signatureProblem(armored: string, message: string, namespace: string, openssh: string): string | undefined {
  const m = /^-----BEGIN SSH SIGNATURE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END SSH SIGNATURE-----\s*$/.exec(armored.trim())
  if (!m) return 'the signature is not an SSH signature (ssh-keygen -Y sign output)'
  const parsed = ssh2.utils.parseKey(openssh)
  if (parsed instanceof Error || Array.isArray(parsed)) return 'the key cannot be read'
  const publicBlob = parsed.getPublicSSH()
  try {
    const r = new Reader(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'))
    if (r.bytes(6).toString() !== 'SSHSIG' || r.uint32() !== 1) return 'the signature is not an SSHSIG version 1 signature'
    const signer = r.string()
    const ns = r.string().toString()
    const reserved = r.string()
    const hashAlgo = r.string().toString()
    const sig = r.string()
    if (!r.done) return 'the signature has trailing bytes'
    if (!signer.equals(publicBlob)) return 'the signature was made with another key'
    if (ns !== namespace) return `the signature is for namespace ${JSON.stringify(ns)}, not ${JSON.stringify(namespace)} (ssh-keygen -Y sign -n ${namespace})`
    if (hashAlgo !== 'sha512' && hashAlgo !== 'sha256') return `the signature's hash ${JSON.stringify(hashAlgo)} is not sha256 or sha512`
    const signed = Buffer.concat([
      Buffer.from('SSHSIG'),
      sshString(ns),
      sshString(reserved),
      sshString(hashAlgo),
      sshString(createHash(hashAlgo).update(message).digest()),
    ])
    const key = createPublicKey(parsed.getPublicPEM())
    return verifySsh(parsed.type, key, signed, sig) ? undefined : 'the signature does not verify with this key over the challenge'
  } catch {
    return 'the signature cannot be read'
  }
}
