import t from 'tap'
import { adminsDecider, type AdminsCommand } from './admins.js'
import { history, when } from '../given.js'

const decide = (events: [string, unknown][], command: AdminsCommand) => when(adminsDecider, history('platform.accounts', events), command)
const granted = (username: string): [string, unknown] => ['AdminGranted', { username }]

t.test('ClaimFirstAdmin: only while there is no admin', async (t) => {
  t.same(decide([], { type: 'ClaimFirstAdmin', username: 'alice' }), [granted('alice')])
  t.same(decide([granted('alice')], { type: 'ClaimFirstAdmin', username: 'bob' }), [], 'someone was first')
  t.same(decide([granted('alice')], { type: 'ClaimFirstAdmin', username: 'alice' }), [], 'a retried claim decides nothing')
})

t.test('GrantAdmin is idempotent', async (t) => {
  t.same(decide([granted('alice')], { type: 'GrantAdmin', username: 'bob' }), [granted('bob')])
  t.same(decide([granted('alice'), granted('bob')], { type: 'GrantAdmin', username: 'bob' }), [])
})

t.test('RevokeAdmin: never the last admin', async (t) => {
  t.same(decide([granted('alice'), granted('bob')], { type: 'RevokeAdmin', username: 'bob' }), [['AdminRevoked', { username: 'bob' }]])
  t.throws(() => decide([granted('alice')], { type: 'RevokeAdmin', username: 'alice' }), { code: 'WHARF_FORBIDDEN' })
  t.throws(() => decide([granted('alice'), granted('bob'), ['AdminRevoked', { username: 'bob' }]], { type: 'RevokeAdmin', username: 'alice' }), {
    code: 'WHARF_FORBIDDEN',
  })
  t.same(decide([granted('alice')], { type: 'RevokeAdmin', username: 'carol' }), [], 'not an admin: nothing')
})
