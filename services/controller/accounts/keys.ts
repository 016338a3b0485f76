import { createHash } from 'node:crypto'
import ssh2 from 'ssh2'
import { WharfError } from '../../../core/errors.js'
import { KEY_NAME_RE } from '../../../domain/index.js'

/** A parsed SSH public key, as Wharf keeps it. */
export interface PublicKey {
  /** `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, ... */
  type: string
  /** `SHA256:<unpadded base64>`, as `ssh-keygen -lf` prints it. */
  fingerprint: string
  /** `<type> <base64>`: the key without its comment. */
  openssh: string
  /** The comment after the key, if any. */
  comment: string
}

/**
 * Parses one OpenSSH public key line with ssh2's parser. Refuses (`WHARF_INVALID`) private keys,
 * several keys at once and anything that is not a key.
 */
export function parsePublicKey(text: string): PublicKey {
  const trimmed = text.trim()
  if (!trimmed) throw new WharfError('WHARF_INVALID', 'the key is empty')
  if (/PRIVATE KEY/.test(trimmed)) throw new WharfError('WHARF_INVALID', 'that is a private key: give the public key (the .pub file)')
  let parsed
  try {
    parsed = ssh2.utils.parseKey(trimmed)
  } catch (err) {
    throw new WharfError('WHARF_INVALID', 'not an SSH public key', { cause: err })
  }
  if (parsed instanceof Error) throw new WharfError('WHARF_INVALID', `not an SSH public key: ${parsed.message}`)
  if (Array.isArray(parsed)) throw new WharfError('WHARF_INVALID', 'give one key at a time')
  if (parsed.isPrivateKey()) throw new WharfError('WHARF_INVALID', 'that is a private key: give the public key (the .pub file)')
  const blob = parsed.getPublicSSH()
  const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
  return { type: parsed.type, fingerprint, openssh: `${parsed.type} ${blob.toString('base64')}`, comment: parsed.comment ?? '' }
}

/** The name a key gets when none is given: its comment if that is a usable name, else `<type>-<8 fingerprint chars>`. */
export function defaultKeyName(key: PublicKey): string {
  if (KEY_NAME_RE.test(key.comment)) return key.comment
  return `${key.type.replace(/[^A-Za-z0-9-]/g, '-')}-${key.fingerprint.slice(7, 15).replace(/[^A-Za-z0-9]/g, 'x')}`.slice(0, 64)
}
