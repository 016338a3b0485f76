import t from 'tap'
import { history, when } from '../given.js'
import { hookDecider, type HookCommand } from './decider.js'
import { matchesPatterns, parseEventPatterns, parseHookUrl } from './names.js'

const ID = 'hk_0123456789abcdef'
const ADDED = { id: ID, url: 'https://example.com/hook', scope: 'shop', events: ['Release*'], owner: 'alice', secret: 'whsec_c2VjcmV0' }
const decide = (events: [string, unknown][], command: HookCommand) => when(hookDecider, history(`hook.${ID}`, events), command)
const added: [string, unknown] = ['HookAdded', ADDED]
const failing: [string, unknown] = ['HookDeliveryFailed', { id: ID, delivery: 'e1', seq: 5, error: 'HTTP 500', retryInMs: 1000 }]
const attempt = { delivery: 'e1', seq: 5, type: 'ReleaseCreated', at: '2026-01-01T00:00:00.000Z', status: 500, durationMs: 3, error: 'HTTP 500' }

t.test('AddHook and RemoveHook: once each', async (t) => {
  t.same(decide([], { type: 'AddHook', ...ADDED }), [added])
  t.throws(() => decide([added], { type: 'AddHook', ...ADDED }), { code: 'WHARF_EXISTS' })
  t.same(decide([added], { type: 'RemoveHook', id: ID, by: 'alice' }), [['HookRemoved', { id: ID, by: 'alice' }]])
  t.throws(() => decide([], { type: 'RemoveHook', id: ID, by: 'alice' }), { code: 'WHARF_NOT_FOUND' })
  t.throws(() => decide([added, ['HookRemoved', { id: ID, by: 'alice' }]], { type: 'RemoveHook', id: ID, by: 'alice' }), { code: 'WHARF_NOT_FOUND' })
})

t.test('outcomes are recorded as changes only: failing once, recovered once, disabled once', async (t) => {
  const fail: HookCommand = { type: 'RecordFailing', id: ID, delivery: 'e1', seq: 5, error: 'HTTP 500', retryInMs: 1000 }
  t.same(decide([added], fail), [failing])
  t.same(decide([added, failing], fail), [], 'already failing: nothing more')
  const recover: HookCommand = { type: 'RecordRecovered', id: ID, delivery: 'e1', seq: 5, failedAttempts: 3 }
  t.same(decide([added], recover), [], 'not failing: nothing')
  t.same(decide([added, failing], recover), [['HookRecovered', { id: ID, delivery: 'e1', seq: 5, failedAttempts: 3 }]])
  const disable: HookCommand = { type: 'DisableHook', id: ID, reason: 'gave up', failingSince: '2026-01-01T00:00:00.000Z' }
  const disabled: [string, unknown] = ['HookDisabled', { id: ID, reason: 'gave up', failingSince: '2026-01-01T00:00:00.000Z' }]
  t.same(decide([added, failing], disable), [disabled])
  t.same(decide([added, failing, disabled], disable), [], 'once')
  t.same(decide([added, failing, disabled], fail), [], 'a disabled hook does not fail again')
})

t.test('attempts and redeliveries: only on a hook that is there', async (t) => {
  const record: HookCommand = { type: 'RecordAttempts', id: ID, attempts: [attempt], omitted: 0 }
  t.same(decide([added], record), [['HookAttempts', { id: ID, attempts: [attempt], omitted: 0 }]])
  t.same(decide([added], { ...record, attempts: [] }), [], 'nothing to record')
  t.same(decide([added, ['HookRemoved', { id: ID, by: 'alice' }]], record), [], 'removed meanwhile: dropped')
  const redo: HookCommand = { type: 'RequestRedelivery', id: ID, delivery: 'e1', seq: 5, request: 'rd_0123456789abcdef', by: 'alice' }
  t.same(decide([added], redo), [['HookRedeliveryRequested', { id: ID, delivery: 'e1', seq: 5, request: 'rd_0123456789abcdef', by: 'alice' }]])
  t.throws(() => decide([], redo), { code: 'WHARF_NOT_FOUND' })
})

t.test('hook URLs: http(s), bounded, no credentials', async (t) => {
  t.equal(parseHookUrl(' https://example.com/in?x=1 ').href, 'https://example.com/in?x=1')
  t.equal(parseHookUrl('http://127.0.0.1:9000/').port, '9000')
  for (const bad of [
    '',
    'ftp://example.com/',
    'file:///etc/passwd',
    'http://u:p@example.com/',
    'http://u@example.com/',
    `https://example.com/${'x'.repeat(2048)}`,
    'nope',
    'http://a b/',
    'https://example.com/#f',
  ]) {
    t.throws(() => parseHookUrl(bad), { code: 'WHARF_INVALID' }, JSON.stringify(bad.slice(0, 40)))
  }
})

t.test('event patterns', async (t) => {
  t.same(parseEventPatterns('Release*, Deploy*,ConfigSet,ConfigSet'), ['Release*', 'Deploy*', 'ConfigSet'])
  t.same(parseEventPatterns(undefined), [])
  t.same(parseEventPatterns(''), [])
  for (const bad of ['config set', 'Re*lease', '*Set', 'release']) t.throws(() => parseEventPatterns(bad), { code: 'WHARF_INVALID' }, bad)
  t.throws(() => parseEventPatterns(Array.from({ length: 33 }, (_, i) => `T${String.fromCharCode(97 + (i % 26))}${i}`.replace(/\d/g, 'x'))), {
    code: 'WHARF_INVALID',
  })
  t.ok(matchesPatterns(['Release*', 'ConfigSet'], 'ReleaseCreated'))
  t.ok(matchesPatterns(['Release*', 'ConfigSet'], 'ConfigSet'))
  t.notOk(matchesPatterns(['Release*', 'ConfigSet'], 'ConfigUnset'))
  t.ok(matchesPatterns([], 'Anything'), 'no patterns: every type')
  t.ok(matchesPatterns(['*'], 'Anything'))
})
