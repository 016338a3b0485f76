/**
 * What a new user sees: an app released and run on Swarm by the scheduler (the publisher announcing
 * its containers, logspout and the logger beside them); `GET /logs` shows what the web process printed
 * as `web.1` of its release, and the platform's lines about the release, the deploy and the start.
 */
import t from 'tap'
import { until } from '../../test/harness.js'
import type { LogLine } from '../../logs/index.js'
import { buildTestImage, removeImage, testDocker, testEngine, testRegistry } from '../builder/testing.js'
import { registerAndLogin, startEngineController } from '../controller/testing.js'
import { Logspout } from '../logspout/logspout.js'
import { Publisher } from '../publisher/publisher.js'
import { removeNamespaceServices, startTestScheduler } from '../scheduler/testing.js'
import { startTestLogger } from './testing.js'

const docker = testDocker()
const engine = testEngine()

t.test('a deployed app: its output as web.1, and [wharf] lines about its release, deploy and start', async (t) => {
  const c = await startEngineController(t)
  const ns = c.deps.cfg.namespace
  t.teardown(() => removeNamespaceServices(ns))
  const alice = await registerAndLogin(c, 'alice')
  await startTestLogger(t, c)
  const spout = await Logspout.start({ docker: engine, logs: c.deps.logger!.logs, log: c.deps.log, namespace: ns, reconnectMs: 100 })
  t.teardown(() => spout.stop())
  const publisher = await Publisher.start({ docker: engine, store: c.deps.store, pool: c.deps.pool, log: c.deps.log, namespace: ns })
  t.teardown(() => publisher.stop())
  await startTestScheduler(t, c, { spec: { stopGraceMs: 1_000, updateMonitorMs: 1_000 } })

  const app = `logs${Date.now().toString(36).slice(-5)}`
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: app } })).status, 201)
  t.teardown(async () => {
    for (const img of await docker.listImages({ filters: { reference: [`${testRegistry()}/${app}`] } }))
      for (const tag of img.RepoTags ?? []) await removeImage(docker, tag)
  })
  const image = await buildTestImage(t, docker, 'FROM busybox\nRUN mkdir /www && echo hi > /www/index.html\nCMD ["httpd", "-f", "-p", "5000", "-h", "/www"]\n')
  const built = await c.call('POST', `/v1/apps/${app}/builds`, {
    token: alice,
    body: { image, procfile: { web: 'echo "hello from $WHARF_PROCESS_TYPE"; exec httpd -f -p $PORT -h /www' }, port: 5000 },
  })
  t.equal(built.status, 201, JSON.stringify(built.body))

  const lines = await until(
    'the web output and the platform lines',
    async () => {
      const res = await c.call('GET', `/v1/apps/${app}/logs`, { token: alice })
      const l = res.body.lines as LogLine[]
      return l.some((x) => x.text === 'hello from web') &&
        l.some((x) => /^web\.1 started \(v2\)$/.test(x.text)) &&
        l.some((x) => x.text === 'deploy of v2 completed')
        ? l
        : undefined
    },
    90_000,
  )
  t.match(
    lines.find((l) => l.text === 'hello from web'),
    { source: 'app', type: 'web', number: 1, release: 2, stream: 'stdout' },
    'the process printed it, as web.1 of v2',
  )
  const wharf = lines.filter((l) => l.source === 'wharf').map((l) => l.text)
  t.match(
    wharf.find((x) => x.startsWith('release v2 created by alice')),
    /^release v2 created by alice: alice deployed /,
  )
  t.ok(
    wharf.some((x) => /^scaled to web=1 by /.test(x)),
    'the first build scales web=1',
  )
  t.match(
    wharf.find((x) => x.startsWith('deploy of v2 started')),
    /^deploy of v2 started \(web=1\)$/,
  )
})
