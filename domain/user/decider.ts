import type { Decider } from '../decider.js'
import { WharfError } from '../../core/errors.js'
import type { UserEvent } from './events.js'
import type { NewEvent, RecordedEvent } from '../../events/index.js'
import { narrow } from '../catalogue.js'

/** One SSH key of a user. */
export interface UserKey {
  fingerprint: string
  name: string
  type: string
  publicKey: string
  addedAt: string
}

/** A `user.<name>` stream folded. */
export interface UserState {
  exists: boolean
  username: string
  email: string
  passwordHash: string
  /** SHA-256 (hex) of every token not revoked. */
  tokens: Set<string>
  /** By fingerprint, in the order added. */
  keys: Map<string, UserKey>
}

export type UserCommand =
  | { type: 'Register'; username: string; email: string; passwordHash: string; admin: boolean }
  /** `verifiedHash`: the password hash the caller's password was checked against (a change since refuses). */
  | { type: 'IssueToken'; username: string; tokenHash: string; verifiedHash: string }
  | { type: 'RevokeToken'; username: string; tokenHash: string }
  | { type: 'RegenerateToken'; username: string; tokenHash: string }
  /** Sets a new password and revokes every token but `keepTokenHash` (the caller's). */
  | { type: 'ChangePassword'; username: string; passwordHash: string; verifiedHash: string; keepTokenHash: string }
  | { type: 'AddKey'; username: string; fingerprint: string; name: string; keyType: string; publicKey: string }
  /** `id`: a fingerprint or a key name. */
  | { type: 'RemoveKey'; username: string; id: string }

export type { UserEvent }

function initialState(): UserState {
  return { exists: false, username: '', email: '', passwordHash: '', tokens: new Set(), keys: new Map() }
}

function notFound(username: string): WharfError {
  return new WharfError('WHARF_NOT_FOUND', `no user ${username}`, { details: { username } })
}

function badCredentials(): WharfError {
  return new WharfError('WHARF_UNAUTHORIZED', 'wrong username or password')
}

/** Finds a key by fingerprint or by name. */
export function findKey(state: UserState, id: string): UserKey | undefined {
  return state.keys.get(id) ?? [...state.keys.values()].find((k) => k.name === id)
}

/** The decider of `user.<name>` streams: the account, password, tokens and SSH keys of one user. */
export const userDecider: Decider<UserState, UserCommand> = {
  initialState,

  evolve(state: UserState, event: RecordedEvent): UserState {
    const e = narrow<UserEvent>(event)
    switch (e.type) {
      case 'UserRegistered':
        return { ...state, exists: true, username: e.data.username, email: e.data.email, passwordHash: e.data.passwordHash }
      case 'PasswordChanged':
        return { ...state, passwordHash: e.data.passwordHash }
      case 'TokenIssued':
        return { ...state, tokens: new Set([...state.tokens, e.data.tokenHash]) }
      case 'TokensRevoked': {
        const tokens = new Set(state.tokens)
        for (const h of e.data.tokenHashes) tokens.delete(h)
        return { ...state, tokens }
      }
      case 'KeyAdded': {
        const keys = new Map(state.keys)
        keys.set(e.data.fingerprint, {
          fingerprint: e.data.fingerprint,
          name: e.data.name,
          type: e.data.type,
          publicKey: e.data.publicKey,
          addedAt: e.occurredAt,
        })
        return { ...state, keys }
      }
      case 'KeyRemoved': {
        const keys = new Map(state.keys)
        keys.delete(e.data.fingerprint)
        return { ...state, keys }
      }
      default:
        return unknownEvent(e)
    }
  },

  decide(command: UserCommand, state: UserState): NewEvent[] {
    if (command.type === 'Register') {
      if (state.exists) throw new WharfError('WHARF_EXISTS', `user ${command.username} exists already`, { details: { username: command.username } })
      const { username, email, passwordHash, admin } = command
      return [{ type: 'UserRegistered', data: { username, email, passwordHash, admin } }]
    }
    if (!state.exists) throw command.type === 'IssueToken' ? badCredentials() : notFound(command.username)
    const username = state.username
    switch (command.type) {
      case 'IssueToken':
        // The password changed between the check and this decision: the check no longer holds.
        if (command.verifiedHash !== state.passwordHash) throw badCredentials()
        return [{ type: 'TokenIssued', data: { username, tokenHash: command.tokenHash } }]
      case 'RevokeToken':
        return state.tokens.has(command.tokenHash) ? [{ type: 'TokensRevoked', data: { username, tokenHashes: [command.tokenHash] } }] : []
      case 'RegenerateToken':
        return [
          ...(state.tokens.size ? [{ type: 'TokensRevoked', data: { username, tokenHashes: [...state.tokens] } }] : []),
          { type: 'TokenIssued', data: { username, tokenHash: command.tokenHash } },
        ]
      case 'ChangePassword': {
        if (command.verifiedHash !== state.passwordHash) throw new WharfError('WHARF_UNAUTHORIZED', 'the current password is wrong')
        const others = [...state.tokens].filter((h) => h !== command.keepTokenHash)
        return [
          { type: 'PasswordChanged', data: { username, passwordHash: command.passwordHash } },
          ...(others.length ? [{ type: 'TokensRevoked', data: { username, tokenHashes: others } }] : []),
        ]
      }
      case 'AddKey': {
        if (state.keys.has(command.fingerprint)) {
          throw new WharfError('WHARF_EXISTS', `the key ${command.fingerprint} is registered already`, { details: { fingerprint: command.fingerprint } })
        }
        if ([...state.keys.values()].some((k) => k.name === command.name)) {
          throw new WharfError('WHARF_EXISTS', `you have a key named ${command.name} already; pick another name`, { details: { name: command.name } })
        }
        const { fingerprint, name, keyType, publicKey } = command
        return [{ type: 'KeyAdded', data: { username, fingerprint, name, type: keyType, publicKey } }]
      }
      case 'RemoveKey': {
        const key = findKey(state, command.id)
        if (!key) throw new WharfError('WHARF_NOT_FOUND', `you have no key ${command.id}`, { details: { key: command.id } })
        return [{ type: 'KeyRemoved', data: { username, fingerprint: key.fingerprint } }]
      }
      default:
        return unknownCommand(command)
    }
  },
}

function unknownEvent(e: never): never {
  throw new Error(`user stream cannot apply ${(e as RecordedEvent).type}`)
}

function unknownCommand(c: never): never {
  throw new Error(`unknown user command ${(c as { type: string }).type}`)
}
