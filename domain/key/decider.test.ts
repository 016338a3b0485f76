import t from 'tap'
import { history, when } from '../given.js'
import { keyClaimDecider, type KeyClaimCommand } from './decider.js'

const FP = `SHA256:${'A'.repeat(43)}`
const decide = (events: [string, unknown][], command: KeyClaimCommand) => when(keyClaimDecider, history('key.0123', events), command)
const claimed = (username: string): [string, unknown] => ['KeyClaimed', { fingerprint: FP, username }]
const released = (username: string): [string, unknown] => ['KeyReleased', { fingerprint: FP, username }]

t.test('ClaimKey', async (t) => {
  t.same(decide([], { type: 'ClaimKey', fingerprint: FP, username: 'alice' }), [claimed('alice')])
  t.throws(() => decide([claimed('alice')], { type: 'ClaimKey', fingerprint: FP, username: 'bob' }), { code: 'WHARF_EXISTS' }, 'held by another')
  t.same(decide([claimed('alice')], { type: 'ClaimKey', fingerprint: FP, username: 'alice' }), [], 'held by the same user: nothing')
  t.same(decide([claimed('alice'), released('alice')], { type: 'ClaimKey', fingerprint: FP, username: 'bob' }), [claimed('bob')], 'free again after release')
})

t.test('ReleaseKey', async (t) => {
  t.same(decide([claimed('alice')], { type: 'ReleaseKey', fingerprint: FP, username: 'alice' }), [released('alice')])
  t.same(decide([claimed('alice')], { type: 'ReleaseKey', fingerprint: FP, username: 'bob' }), [], 'only the holder releases')
  t.same(decide([], { type: 'ReleaseKey', fingerprint: FP, username: 'alice' }), [])
})
