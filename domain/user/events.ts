import Type, { type Static } from 'typebox'
import type { EventDefinition } from '../../events/catalogue.js'
import type { RecordedEvent } from '../../events/envelope.js'
import { Strict, UserName } from '../schema.js'
import { KEY_NAME_PATTERN } from './names.js'

/** A SHA-256 digest, lower-case hex: tokens are stored (and carried in events) only as this. */
const Sha256Hex = Type.String({ pattern: '^[0-9a-f]{64}$' })
/** An SSH key fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64. */
export const KeyFingerprint = Type.String({ pattern: '^SHA256:[A-Za-z0-9+/]{43}$' })
/** The name a user gives a key (default: the key's comment): letters, digits, `@ . _ -`, 1-64 characters. */
export const KeyName = Type.String({ pattern: KEY_NAME_PATTERN })

export const UserRegisteredSchema = Type.Object(
  { username: UserName, email: Type.String({ maxLength: 254 }), passwordHash: Type.String(), admin: Type.Boolean() },
  Strict,
)
export type UserRegisteredData = Static<typeof UserRegisteredSchema>

export const PasswordChangedSchema = Type.Object({ username: UserName, passwordHash: Type.String() }, Strict)
export type PasswordChangedData = Static<typeof PasswordChangedSchema>

export const TokenIssuedSchema = Type.Object({ username: UserName, tokenHash: Sha256Hex }, Strict)
export type TokenIssuedData = Static<typeof TokenIssuedSchema>

export const TokensRevokedSchema = Type.Object({ username: UserName, tokenHashes: Type.Array(Sha256Hex, { minItems: 1 }) }, Strict)
export type TokensRevokedData = Static<typeof TokensRevokedSchema>

export const KeyAddedSchema = Type.Object(
  { username: UserName, fingerprint: KeyFingerprint, name: KeyName, type: Type.String({ maxLength: 64 }), publicKey: Type.String({ maxLength: 16384 }) },
  Strict,
)
export type KeyAddedData = Static<typeof KeyAddedSchema>

export const KeyRemovedSchema = Type.Object({ username: UserName, fingerprint: KeyFingerprint }, Strict)
export type KeyRemovedData = Static<typeof KeyRemovedSchema>

/** An event of a `user.<name>` stream as readers see it: the newest version of its type. */
export type UserEvent =
  | RecordedEvent<'UserRegistered', UserRegisteredData>
  | RecordedEvent<'PasswordChanged', PasswordChangedData>
  | RecordedEvent<'TokenIssued', TokenIssuedData>
  | RecordedEvent<'TokensRevoked', TokensRevokedData>
  | RecordedEvent<'KeyAdded', KeyAddedData>
  | RecordedEvent<'KeyRemoved', KeyRemovedData>

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
    schema: UserRegisteredSchema,
  },
  {
    type: 'PasswordChanged',
    version: 1,
    stream: 'user',
    description: "A user's password was changed (the event carries the new scrypt hash, never the password).",
    schema: PasswordChangedSchema,
  },
  {
    type: 'TokenIssued',
    version: 1,
    stream: 'user',
    description: 'An API token was issued (login or regenerate); the event carries its SHA-256, never the token.',
    schema: TokenIssuedSchema,
  },
  {
    type: 'TokensRevoked',
    version: 1,
    stream: 'user',
    description: 'API tokens were revoked (logout, regenerate, password change), by their SHA-256.',
    schema: TokensRevokedSchema,
  },
  {
    type: 'KeyAdded',
    version: 1,
    stream: 'user',
    description: 'An SSH public key was added to a user (after its `key.<hash>` claim).',
    schema: KeyAddedSchema,
  },
  {
    type: 'KeyRemoved',
    version: 1,
    stream: 'user',
    description: 'An SSH public key was removed from a user.',
    schema: KeyRemovedSchema,
  },
]
