/**
 * The account commands and queries, apart from HTTP: each loads what it needs, runs a decider through
 * {@link runCommand} and answers plain data. Routes (`routes/auth.ts`, `keys.ts`, `users.ts`) only
 * parse, authorize and call these.
 */
import type pg from 'pg'
import { fold } from '../../../domain/command.js'
import { WharfError } from '../../../core/errors.js'
import { dataOf } from '../../../domain/index.js'
import { claimStreamId, streamId, type EventContext, type EventStore } from '../../../events/index.js'
import { runCommand } from '../../../domain/command.js'
import { ACCOUNTS_STREAM, adminsDecider } from '../../../domain/user/admins.js'
import { keyClaimDecider } from '../../../domain/key/decider.js'
import { getUser, tokensOf, type KeyView, type UserView } from '../../../projections/index.js'
import { defaultKeyName, parsePublicKey } from './keys.js'
import { CHALLENGE_TTL_MS, challengeProblem, challengeText, KEY_PROOF_NAMESPACE, signatureProblem } from './keyproof.js'
import { hashPassword, hashToken, newToken, verifyPassword } from './secrets.js'
import { findKey, userDecider } from '../../../domain/user/decider.js'
import { forgetTokens } from '../auth.js'

export interface AccountDeps {
  store: EventStore
  pool: pg.Pool
}

/** The read models a user-stream command must be visible in before it answers. */
const USERS = ['users']
const KEYS = ['keys']

export { getUser, listAdmins, listKeys, listUsers, userExists, type KeyView, type UserView } from '../../../projections/index.js'

/** `user:<name>` for a signed-in user, `anonymous` for a public request. */
export function actorOf(username: string | undefined): string {
  return username ? `user:${username}` : 'anonymous'
}

const userStream = (username: string) => streamId('user', username)

async function loadUser(deps: AccountDeps, username: string) {
  const { events } = await deps.store.readStream(userStream(username))
  return fold(userDecider, events)
}

/**
 * Registers a user. `caller` is the signed-in user of the request, if it had a valid token.
 * The first user ever (no admin yet, decided on `platform.accounts`) may always register and
 * becomes the admin; after that `mode` decides.
 */
export async function register(
  deps: AccountDeps,
  input: { username: string; email: string; password: string },
  opts: { mode: 'open' | 'admin_only' | 'closed'; caller: { username: string; admin: boolean } | undefined; correlationId: string },
): Promise<UserView> {
  const { username, email, password } = input
  const accounts = fold(adminsDecider, (await deps.store.readStream(ACCOUNTS_STREAM)).events)
  const first = accounts.admins.size === 0
  if (!first) {
    if (opts.mode === 'closed') throw new WharfError('WHARF_FORBIDDEN', 'registration is closed on this platform (WHARF_REGISTRATION=closed)')
    if (opts.mode === 'admin_only' && !opts.caller?.admin) {
      throw new WharfError('WHARF_FORBIDDEN', 'only an admin may register users on this platform (WHARF_REGISTRATION=admin_only)')
    }
  }
  // Refuse a taken name before spending an scrypt and before the admin claim.
  if ((await deps.store.readStream(userStream(username))).version > 0) {
    throw new WharfError('WHARF_EXISTS', `user ${username} exists already`, { details: { username } })
  }
  const passwordHash = await hashPassword(password)
  const ctx: EventContext = { actor: actorOf(opts.caller?.username ?? username), correlationId: opts.correlationId }
  let admin = false
  if (first) {
    // Two first registrations at once: one append wins, the other decides again and claims nothing.
    const res = await runCommand(deps, { stream: ACCOUNTS_STREAM, decider: adminsDecider, command: { type: 'ClaimFirstAdmin', username }, ctx, waitFor: USERS })
    admin = res.events.length > 0 || res.state.admins.has(username)
  }
  await runCommand(deps, {
    stream: userStream(username),
    decider: userDecider,
    command: { type: 'Register', username, email, passwordHash, admin },
    ctx,
    waitFor: USERS,
  })
  return { username, email, admin }
}

/** Checks the password and issues a token. Unknown user and wrong password answer alike. */
export async function login(
  deps: AccountDeps,
  input: { username: string; password: string },
  correlationId: string,
): Promise<{ token: string; username: string }> {
  const state = await loadUser(deps, input.username)
  const ok = await verifyPassword(input.password, state.exists ? state.passwordHash : undefined)
  if (!ok) throw new WharfError('WHARF_UNAUTHORIZED', 'wrong username or password')
  const token = newToken()
  await runCommand(deps, {
    stream: userStream(input.username),
    decider: userDecider,
    command: { type: 'IssueToken', username: input.username, tokenHash: hashToken(token), verifiedHash: state.passwordHash },
    ctx: { actor: actorOf(input.username), correlationId },
    waitFor: USERS,
  })
  return { token, username: input.username }
}

/** Revokes one token (the caller's). */
export async function logout(deps: AccountDeps, username: string, token: string, correlationId: string): Promise<void> {
  await runCommand(deps, {
    stream: userStream(username),
    decider: userDecider,
    command: { type: 'RevokeToken', username, tokenHash: hashToken(token) },
    ctx: { actor: actorOf(username), correlationId },
    waitFor: USERS,
  })
  forgetTokens(deps.pool)
}

/** A token as `auth:tokens` shows it: never the token nor its whole hash. */
export interface TokenView {
  /** The first 16 hex digits of the token's SHA-256: enough to name it, useless to sign in. */
  id: string
  createdAt: string
  expiresAt: string
  expired: boolean
  /** The token of the request that asked. */
  current: boolean
}

/** The user's tokens (not revoked), oldest first; `ttlMs` is WHARF_TOKEN_TTL. */
export async function listTokens(pool: pg.Pool, username: string, currentToken: string, ttlMs: number): Promise<TokenView[]> {
  const current = hashToken(currentToken)
  const now = Date.now()
  return (await tokensOf(pool, username)).map((t) => {
    const expires = Date.parse(t.createdAt) + ttlMs
    return { id: t.hash.slice(0, 16), createdAt: t.createdAt, expiresAt: new Date(expires).toISOString(), expired: expires <= now, current: t.hash === current }
  })
}

/** Revokes one of the user's tokens by its id (from {@link listTokens}); another user's id is not found. */
export async function revokeTokenById(deps: AccountDeps, username: string, id: string, correlationId: string): Promise<void> {
  const hash = (await tokensOf(deps.pool, username)).find((t) => t.hash.slice(0, 16) === id)?.hash
  if (!hash) throw new WharfError('WHARF_NOT_FOUND', `you have no token ${id} (wharf auth:tokens lists yours)`, { details: { id } })
  await runCommand(deps, {
    stream: userStream(username),
    decider: userDecider,
    command: { type: 'RevokeToken', username, tokenHash: hash },
    ctx: { actor: actorOf(username), correlationId },
    waitFor: USERS,
  })
  forgetTokens(deps.pool)
}

/** Revokes every token of the user and issues a new one. */
export async function regenerateToken(deps: AccountDeps, username: string, correlationId: string): Promise<{ token: string }> {
  const token = newToken()
  await runCommand(deps, {
    stream: userStream(username),
    decider: userDecider,
    command: { type: 'RegenerateToken', username, tokenHash: hashToken(token) },
    ctx: { actor: actorOf(username), correlationId },
    waitFor: USERS,
  })
  forgetTokens(deps.pool)
  return { token }
}

/** Changes the password after checking the current one; revokes every token but the caller's. */
export async function changePassword(
  deps: AccountDeps,
  username: string,
  input: { password: string; newPassword: string; token: string },
  correlationId: string,
): Promise<void> {
  const state = await loadUser(deps, username)
  if (!(await verifyPassword(input.password, state.exists ? state.passwordHash : undefined))) {
    throw new WharfError('WHARF_UNAUTHORIZED', 'the current password is wrong')
  }
  const passwordHash = await hashPassword(input.newPassword)
  await runCommand(deps, {
    stream: userStream(username),
    decider: userDecider,
    command: { type: 'ChangePassword', username, passwordHash, verifiedHash: state.passwordHash, keepTokenHash: hashToken(input.token) },
    ctx: { actor: actorOf(username), correlationId },
    waitFor: USERS,
  })
  forgetTokens(deps.pool)
}

/**
 * Adds an SSH public key: claims `key.<hash>` first (a key held by anyone else is refused, and of
 * two users adding one key at once exactly one wins), then records it on the user's stream. When the
 * second step is refused, the claim is given back.
 */
export async function addKey(
  deps: AccountDeps,
  username: string,
  input: { key: string; name?: string | undefined; challenge?: string | undefined; signature?: string | undefined },
  correlationId: string,
  platform: string,
): Promise<KeyView> {
  const key = parsePublicKey(input.key)
  const name = input.name ?? defaultKeyName(key)
  const ctx: EventContext = { actor: actorOf(username), correlationId }
  const { version, events } = await deps.store.readStream(userStream(username))
  const state = fold(userDecider, events)
  // Proof of possession first, so one who does not hold the key learns nothing of it (not even that it is taken).
  if (input.challenge === undefined || input.signature === undefined) {
    throw new WharfError(
      'WHARF_KEY_UNPROVEN',
      `prove you hold the private key of ${key.fingerprint}: sign the challenge of GET /v1/keys/challenge with it (ssh-keygen -Y sign -n ${KEY_PROOF_NAMESPACE}) and send challenge and signature with the key; wharf keys:add does this`,
      { details: { fingerprint: key.fingerprint } },
    )
  }
  const problem =
    challengeProblem(input.challenge, { username, platform, version }, Date.now()) ??
    signatureProblem(input.signature, input.challenge, KEY_PROOF_NAMESPACE, key.openssh)
  if (problem) throw new WharfError('WHARF_KEY_UNPROVEN', `${key.fingerprint} is not proven yours: ${problem}`, { details: { fingerprint: key.fingerprint } })
  // Decide on the user's own keys first, so a duplicate name costs no claim.
  userDecider.decide({ type: 'AddKey', username, fingerprint: key.fingerprint, name, keyType: key.type, publicKey: key.openssh }, state)
  const claim = claimStreamId('key', key.fingerprint)
  const claimed = await runCommand(deps, {
    stream: claim,
    decider: keyClaimDecider,
    command: { type: 'ClaimKey', fingerprint: key.fingerprint, username },
    ctx,
    waitFor: [],
  })
  try {
    await runCommand(deps, {
      stream: userStream(username),
      decider: userDecider,
      command: { type: 'AddKey', username, fingerprint: key.fingerprint, name, keyType: key.type, publicKey: key.openssh },
      ctx,
      waitFor: KEYS,
    })
  } catch (err) {
    // Only give back a claim this call made: another request of the same user may hold it for a key it added.
    if (claimed.events.length > 0 && err instanceof WharfError && err.code !== 'WHARF_TIMEOUT') {
      const now = await loadUser(deps, username)
      if (!now.keys.has(key.fingerprint)) {
        await runCommand(deps, {
          stream: claim,
          decider: keyClaimDecider,
          command: { type: 'ReleaseKey', fingerprint: key.fingerprint, username },
          ctx,
          waitFor: [],
        }).catch(() => {})
      }
    }
    throw err
  }
  return { fingerprint: key.fingerprint, name, type: key.type, publicKey: key.openssh, createdAt: new Date().toISOString() }
}

/**
 * A challenge to sign with a key before adding it (see keyproof.ts): good for 10 minutes, and until
 * anything is recorded on the user's stream.
 */
export async function keyChallenge(
  deps: AccountDeps,
  username: string,
  platform: string,
): Promise<{ challenge: string; namespace: string; expiresAt: string }> {
  const issuedAt = Date.now()
  const version = await deps.store.streamVersion(userStream(username))
  return {
    challenge: challengeText({ username, platform, version, issuedAt }),
    namespace: KEY_PROOF_NAMESPACE,
    expiresAt: new Date(issuedAt + CHALLENGE_TTL_MS).toISOString(),
  }
}

/** Removes one of the user's keys (by fingerprint or name), then releases its claim. */
export async function removeKey(deps: AccountDeps, username: string, id: string, correlationId: string): Promise<void> {
  const ctx: EventContext = { actor: actorOf(username), correlationId }
  const state = await loadUser(deps, username)
  const key = findKey(state, id)
  const res = await runCommand(deps, { stream: userStream(username), decider: userDecider, command: { type: 'RemoveKey', username, id }, ctx, waitFor: KEYS })
  const fingerprint = dataOf(res.events[0], 'KeyRemoved')?.fingerprint ?? key?.fingerprint
  if (!fingerprint) return
  await runCommand(deps, {
    stream: claimStreamId('key', fingerprint),
    decider: keyClaimDecider,
    command: { type: 'ReleaseKey', fingerprint, username },
    ctx,
    waitFor: [],
  })
}

/** Makes `username` an admin (idempotent). */
export async function grantAdmin(deps: AccountDeps, actor: string, username: string, correlationId: string): Promise<UserView> {
  const user = await getUser(deps.pool, username)
  if (!user) throw new WharfError('WHARF_NOT_FOUND', `no user ${username}`, { details: { username } })
  await runCommand(deps, {
    stream: ACCOUNTS_STREAM,
    decider: adminsDecider,
    command: { type: 'GrantAdmin', username },
    ctx: { actor: actorOf(actor), correlationId },
    waitFor: USERS,
  })
  forgetTokens(deps.pool)
  return { username, email: user.email, admin: true }
}

/** Takes admin from `username` (idempotent); refuses the last admin. */
export async function revokeAdmin(deps: AccountDeps, actor: string, username: string, correlationId: string): Promise<UserView> {
  const user = await getUser(deps.pool, username)
  if (!user) throw new WharfError('WHARF_NOT_FOUND', `no user ${username}`, { details: { username } })
  await runCommand(deps, {
    stream: ACCOUNTS_STREAM,
    decider: adminsDecider,
    command: { type: 'RevokeAdmin', username },
    ctx: { actor: actorOf(actor), correlationId },
    waitFor: USERS,
  })
  forgetTokens(deps.pool)
  return { username, email: user.email, admin: false }
}
