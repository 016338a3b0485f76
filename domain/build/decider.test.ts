import t from 'tap'
import { wharfCatalogue } from '../catalogue.js'
import { fold } from '../decider.js'
import { history, when } from '../given.js'
import { buildDecider, type BuildCommand } from './decider.js'

const SHA = 'a'.repeat(40)
const stream = 'build.01890000-0000-7000-8000-000000000001'
const given = (...events: [string, unknown][]) => history(stream, events)
const decide = (events: [string, unknown][], command: BuildCommand) => when(buildDecider, given(...events), command)

const push: BuildCommand = { type: 'ReceivePush', app: 'shop', sha: SHA, user: 'alice', fingerprint: 'SHA256:x', stack: 'node', builder: 'host:1' }
const received: [string, unknown] = ['PushReceived', { app: 'shop', sha: SHA, user: 'alice', fingerprint: 'SHA256:x' }]
const started: [string, unknown] = ['BuildStarted', { app: 'shop', user: 'alice', kind: 'git', sha: SHA, stack: 'node', builder: 'host:1' }]
const imageStarted: [string, unknown] = [
  'BuildStarted',
  { app: 'shop', user: 'alice', kind: 'image', source: 'nginx:1', stack: 'image', builder: 'controller' },
]
const succeed: BuildCommand = {
  type: 'SucceedBuild',
  app: 'shop',
  image: '127.0.0.1:5000/shop:git-aaaaaaa',
  digest: 'sha256:1',
  procfile: { web: 'node app.js' },
  port: 5000,
}
const succeeded: [string, unknown] = [
  'BuildSucceeded',
  { app: 'shop', image: '127.0.0.1:5000/shop:git-aaaaaaa', digest: 'sha256:1', procfile: { web: 'node app.js' }, port: 5000 },
]
const fail: BuildCommand = { type: 'FailBuild', app: 'shop', reason: 'the build failed: boom', lastLines: ['boom'] }
const failed: [string, unknown] = ['BuildFailed', { app: 'shop', reason: 'the build failed: boom', lastLines: ['boom'] }]
const orphan: BuildCommand = { type: 'FailOrphanBuild', app: 'shop' }

t.test('state: none -> received -> started -> succeeded | failed, with app, sha and builder', async (t) => {
  t.same(fold(buildDecider, []), { status: 'none' })
  t.same(fold(buildDecider, given(received)), { status: 'received', app: 'shop', sha: SHA })
  t.same(fold(buildDecider, given(received, started)), { status: 'started', app: 'shop', sha: SHA, builder: 'host:1' })
  t.same(fold(buildDecider, given(imageStarted)), { status: 'started', app: 'shop', builder: 'controller' })
  t.match(fold(buildDecider, given(received, started, succeeded)), { status: 'succeeded', builder: 'host:1' })
  t.match(fold(buildDecider, given(imageStarted, failed)), { status: 'failed', builder: 'controller' })
})

t.test('ReceivePush: a push is received and its build started in one decision, once', async (t) => {
  t.same(decide([], push), [received, started])
  t.same(decide([received, started], push), [], 'the same push again (a retried append): nothing')
  t.throws(() => decide([imageStarted], push), { code: 'WHARF_CONFLICT' }, 'another build on the stream')
  t.throws(() => decide([received, started], { ...push, builder: 'host:2' }), { code: 'WHARF_CONFLICT' }, 'another builder')
})

t.test('StartBuild (builds:create): an image build starts on a new stream only', async (t) => {
  const start: BuildCommand = { type: 'StartBuild', app: 'shop', user: 'alice', source: 'nginx:1', builder: 'controller' }
  t.same(decide([], start), [imageStarted])
  t.throws(() => decide([imageStarted], start), { code: 'WHARF_CONFLICT', message: /started already/ })
  t.throws(() => decide([imageStarted, failed], start), { code: 'WHARF_CONFLICT', message: /failed already/ })
})

t.test('SucceedBuild: only a started build succeeds, once', async (t) => {
  t.same(decide([received, started], succeed), [succeeded])
  t.same(
    decide([imageStarted], { ...succeed, digest: undefined }),
    [['BuildSucceeded', { app: 'shop', image: '127.0.0.1:5000/shop:git-aaaaaaa', procfile: { web: 'node app.js' }, port: 5000 }]],
    'no digest',
  )
  t.throws(() => decide([], succeed), { code: 'WHARF_CONFLICT', message: /not started/ }, 'not started')
  t.throws(() => decide([received], succeed), { code: 'WHARF_CONFLICT', message: /not started/ }, 'received, not started')
  t.throws(() => decide([received, started, succeeded], succeed), { code: 'WHARF_CONFLICT', message: /succeeded already/ }, 'twice')
  t.throws(
    () => decide([received, started, failed], succeed),
    { code: 'WHARF_CONFLICT', message: /failed already/ },
    'after a failure (the orphan sweep got there first)',
  )
})

t.test('FailBuild: an unfinished build fails, once; a finished one takes nothing more', async (t) => {
  t.same(decide([received, started], fail), [failed])
  t.same(decide([received], fail), [failed], 'a received push can fail before its build starts')
  t.same(
    decide([imageStarted], { ...fail, reason: 'x'.repeat(3000) }),
    [['BuildFailed', { app: 'shop', reason: 'x'.repeat(2048), lastLines: ['boom'] }]],
    'the reason is cut to the schema',
  )
  t.throws(() => decide([], fail), { code: 'WHARF_CONFLICT' }, 'nothing to fail')
  t.throws(
    () => decide([received, started, succeeded], fail),
    { code: 'WHARF_CONFLICT', message: /succeeded already/ },
    'a succeeded build does not fail after',
  )
  t.throws(() => decide([received, started, failed], fail), { code: 'WHARF_CONFLICT', message: /failed already/ })
})

t.test('FailOrphanBuild: the sweep fails an unfinished build naming its builder, and leaves a finished one alone', async (t) => {
  t.same(decide([received, started], orphan), [
    ['BuildFailed', { app: 'shop', reason: 'the builder (host:1) stopped during the build; nothing was released; push again', lastLines: [] }],
  ])
  t.same(decide([received], orphan), [
    ['BuildFailed', { app: 'shop', reason: 'the builder (unknown) stopped during the build; nothing was released; push again', lastLines: [] }],
  ])
  t.same(decide([received, started, succeeded], orphan), [], 'succeeded meanwhile')
  t.same(decide([received, started, failed], orphan), [], 'failed meanwhile')
  t.same(decide([], orphan), [], 'no build')
})

t.test('a command names the app of the build', async (t) => {
  t.throws(() => decide([received, started], { ...succeed, app: 'other' }), { code: 'WHARF_INVALID' })
  t.throws(() => decide([received, started], { ...orphan, app: 'other' }), { code: 'WHARF_INVALID' })
})

t.test('every event the decider makes is valid in the catalogue', async (t) => {
  const catalogue = wharfCatalogue()
  const events: [string, unknown][] = [
    ...decide([], push),
    ...decide([], { type: 'StartBuild', app: 'shop', user: 'alice', source: 'nginx:1', builder: 'controller' }),
    ...decide([received, started], succeed),
    ...decide([received, started], { ...fail, reason: 'x'.repeat(3000) }),
    ...decide([received, started], orphan),
  ]
  for (const [type, data] of events) t.doesNotThrow(() => catalogue.validate({ type, version: 1, stream, data }), type)
})
