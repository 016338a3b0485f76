import t from 'tap'
import { wharfCatalogue } from '../catalogue.js'
import { history, when } from '../given.js'
import { userDecider, type UserCommand } from './decider.js'

const H1 = 'a'.repeat(64)
const H2 = 'b'.repeat(64)
const H3 = 'c'.repeat(64)
const FP = `SHA256:${'A'.repeat(43)}`
const FP2 = `SHA256:${'B'.repeat(43)}`
const registered: [string, unknown] = ['UserRegistered', { username: 'alice', email: 'a@example.com', passwordHash: 'hash1', admin: false }]
const given = (...events: [string, unknown][]) => history('user.alice', events)
const decide = (events: [string, unknown][], command: UserCommand) => when(userDecider, given(...events), command)

t.test('Register', async (t) => {
  t.same(decide([], { type: 'Register', username: 'alice', email: 'a@example.com', passwordHash: 'hash1', admin: true }), [
    ['UserRegistered', { username: 'alice', email: 'a@example.com', passwordHash: 'hash1', admin: true }],
  ])
  t.throws(() => decide([registered], { type: 'Register', username: 'alice', email: 'x@example.com', passwordHash: 'h', admin: false }), {
    code: 'WHARF_EXISTS',
  })
})

t.test('IssueToken', async (t) => {
  t.same(decide([registered], { type: 'IssueToken', username: 'alice', tokenHash: H1, verifiedHash: 'hash1' }), [
    ['TokenIssued', { username: 'alice', tokenHash: H1 }],
  ])
  t.throws(() => decide([], { type: 'IssueToken', username: 'alice', tokenHash: H1, verifiedHash: '' }), { code: 'WHARF_UNAUTHORIZED' }, 'no such user')
  t.throws(
    () =>
      decide([registered, ['PasswordChanged', { username: 'alice', passwordHash: 'hash2' }]], {
        type: 'IssueToken',
        username: 'alice',
        tokenHash: H1,
        verifiedHash: 'hash1',
      }),
    { code: 'WHARF_UNAUTHORIZED' },
    'the password changed after it was checked',
  )
})

t.test('RevokeToken', async (t) => {
  const issued: [string, unknown] = ['TokenIssued', { username: 'alice', tokenHash: H1 }]
  t.same(decide([registered, issued], { type: 'RevokeToken', username: 'alice', tokenHash: H1 }), [['TokensRevoked', { username: 'alice', tokenHashes: [H1] }]])
  t.same(
    decide([registered, issued, ['TokensRevoked', { username: 'alice', tokenHashes: [H1] }]], { type: 'RevokeToken', username: 'alice', tokenHash: H1 }),
    [],
    'revoked already: nothing',
  )
  t.throws(() => decide([], { type: 'RevokeToken', username: 'alice', tokenHash: H1 }), { code: 'WHARF_NOT_FOUND' })
})

t.test('RegenerateToken revokes every live token and issues one', async (t) => {
  const events: [string, unknown][] = [
    registered,
    ['TokenIssued', { username: 'alice', tokenHash: H1 }],
    ['TokenIssued', { username: 'alice', tokenHash: H2 }],
    ['TokensRevoked', { username: 'alice', tokenHashes: [H1] }],
  ]
  t.same(decide(events, { type: 'RegenerateToken', username: 'alice', tokenHash: H3 }), [
    ['TokensRevoked', { username: 'alice', tokenHashes: [H2] }],
    ['TokenIssued', { username: 'alice', tokenHash: H3 }],
  ])
  t.same(
    decide([registered], { type: 'RegenerateToken', username: 'alice', tokenHash: H3 }),
    [['TokenIssued', { username: 'alice', tokenHash: H3 }]],
    'no token to revoke',
  )
})

t.test('ChangePassword keeps the caller token, revokes the others', async (t) => {
  const events: [string, unknown][] = [registered, ['TokenIssued', { username: 'alice', tokenHash: H1 }], ['TokenIssued', { username: 'alice', tokenHash: H2 }]]
  t.same(decide(events, { type: 'ChangePassword', username: 'alice', passwordHash: 'hash2', verifiedHash: 'hash1', keepTokenHash: H1 }), [
    ['PasswordChanged', { username: 'alice', passwordHash: 'hash2' }],
    ['TokensRevoked', { username: 'alice', tokenHashes: [H2] }],
  ])
  t.throws(() => decide(events, { type: 'ChangePassword', username: 'alice', passwordHash: 'hash2', verifiedHash: 'stale', keepTokenHash: H1 }), {
    code: 'WHARF_UNAUTHORIZED',
  })
})

t.test('AddKey and RemoveKey', async (t) => {
  const add: UserCommand = { type: 'AddKey', username: 'alice', fingerprint: FP, name: 'laptop', keyType: 'ssh-ed25519', publicKey: 'ssh-ed25519 AAAA' }
  const added: [string, unknown] = ['KeyAdded', { username: 'alice', fingerprint: FP, name: 'laptop', type: 'ssh-ed25519', publicKey: 'ssh-ed25519 AAAA' }]
  t.same(decide([registered], add), [added])
  t.throws(() => decide([registered, added], add), { code: 'WHARF_EXISTS' }, 'same key twice')
  t.throws(() => decide([registered, added], { ...add, fingerprint: FP2 }), { code: 'WHARF_EXISTS' }, 'same name twice')
  t.throws(() => decide([], add), { code: 'WHARF_NOT_FOUND' }, 'no such user')
  t.same(
    decide([registered, added], { type: 'RemoveKey', username: 'alice', id: FP }),
    [['KeyRemoved', { username: 'alice', fingerprint: FP }]],
    'by fingerprint',
  )
  t.same(
    decide([registered, added], { type: 'RemoveKey', username: 'alice', id: 'laptop' }),
    [['KeyRemoved', { username: 'alice', fingerprint: FP }]],
    'by name',
  )
  t.throws(() => decide([registered, added, ['KeyRemoved', { username: 'alice', fingerprint: FP }]], { type: 'RemoveKey', username: 'alice', id: FP }), {
    code: 'WHARF_NOT_FOUND',
  })
  t.same(decide([registered, added, ['KeyRemoved', { username: 'alice', fingerprint: FP }]], add), [added], 'removed, then added again')
})

t.test('every event the decider makes is valid in the catalogue', async (t) => {
  const catalogue = wharfCatalogue()
  const events: [string, unknown][] = [
    ...decide([], { type: 'Register', username: 'alice', email: 'a@example.com', passwordHash: 'scrypt$1$1$1$a$b', admin: false }),
    ...decide([registered, ['TokenIssued', { username: 'alice', tokenHash: H1 }]], { type: 'RegenerateToken', username: 'alice', tokenHash: H2 }),
    ...decide([registered, ['TokenIssued', { username: 'alice', tokenHash: H1 }]], {
      type: 'ChangePassword',
      username: 'alice',
      passwordHash: 'h',
      verifiedHash: 'hash1',
      keepTokenHash: H2,
    }),
    ...decide([registered], { type: 'AddKey', username: 'alice', fingerprint: FP, name: 'me@laptop', keyType: 'ssh-ed25519', publicKey: 'ssh-ed25519 AAAA' }),
  ]
  for (const [type, data] of events) t.doesNotThrow(() => catalogue.validate({ type, version: 1, stream: 'user.alice', data }), type)
})
