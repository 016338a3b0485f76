import Type from 'typebox'
import type { EventDefinition } from '../../events/catalogue.js'
import { Strict, UserName } from '../schema.js'

/** A SHA-256 digest, lower-case hex: tokens are stored (and carried in events) only as this. */
const Sha256Hex = Type.String({ pattern: '^[0-9a-f]{64}$' })
/** An SSH key fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64. */
export const KeyFingerprint = Type.String({ pattern: '^SHA256:[A-Za-z0-9+/]{43}$' })
/** The name a user gives a key (default: the key's comment): letters, digits, `@ . _ -`, 1-64 characters. */
export const KeyName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9@._-]{0,63}$' })

/**
 * Events of `user.<name>` streams: the account, its password, its API tokens (as hashes) and its
 * SSH keys. The admin set lives on the `platform.accounts` stream (domain/platform/events.ts).
 */
export const userEvents: EventDefinition[] = [
  {
    type: 'UserRegistered',
    version: 1,
    stream: 'user',
    description: 'A user account was created; the first one is an admin.',
    schema: Type.Object(
      { username: UserName, email: Type.String({ maxLength: 254 }), passwordHash: Type.String(), admin: Type.Boolean() },
      Strict,
    ),
  },
  {
    type: 'PasswordChanged',
    version: 1,
    stream: 'user',
    description: "A user's password was changed (the event carries the new scrypt hash, never the password).",
    schema: Type.Object({ username: UserName, passwordHash: Type.String() }, Strict),
  },
  {
    type: 'TokenIssued',
    version: 1,
    stream: 'user',
    description: 'An API token was issued (login or regenerate); the event carries its SHA-256, never the token.',
    schema: Type.Object({ username: UserName, tokenHash: Sha256Hex }, Strict),
  },
  {
    type: 'TokensRevoked',
    version: 1,
    stream: 'user',
    description: 'API tokens were revoked (logout, regenerate, password change), by their SHA-256.',
    schema: Type.Object({ username: UserName, tokenHashes: Type.Array(Sha256Hex, { minItems: 1 }) }, Strict),
  },
  {
    type: 'KeyAdded',
    version: 1,
    stream: 'user',
    description: 'An SSH public key was added to a user (after its `key.<hash>` claim).',
    schema: Type.Object(
      { username: UserName, fingerprint: KeyFingerprint, name: KeyName, type: Type.String({ maxLength: 64 }), publicKey: Type.String({ maxLength: 16384 }) },
      Strict,
    ),
  },
  {
    type: 'KeyRemoved',
    version: 1,
    stream: 'user',
    description: 'An SSH public key was removed from a user.',
    schema: Type.Object({ username: UserName, fingerprint: KeyFingerprint }, Strict),
  },
]
