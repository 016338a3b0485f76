import { request } from 'undici'
import pg from 'pg'
import t from 'tap'
import { registryHeaders } from '../core/config.js'
import { dockerClient } from '../core/engine/docker.js'
import { testNatsUrl, testPgUrl } from '../test/harness.js'
import { tarOf } from '../test/tar.js'

/** The test registry's credentials, as the engine takes them (`make test` names them). */
function registryLogin() {
  const e = process.env
  return { serveraddress: e.WHARF_TEST_REGISTRY!, username: e.WHARF_TEST_REGISTRY_USER!, password: e.WHARF_TEST_REGISTRY_PASSWORD! }
}
const registryAuth = () => registryHeaders(registryLogin())

/** The real parts `make test` started: each answers, on 127.0.0.1 only, as `make up` promises. */

t.test('NATS answers with JetStream enabled', async (t) => {
  const monitor = process.env.WHARF_TEST_NATS_MONITOR_PORT
  t.ok(monitor, 'monitor port given')
  const res = await request(`http://127.0.0.1:${monitor}/healthz?js-enabled-only=true`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
  const varz = (await (await request(`http://127.0.0.1:${monitor}/varz`)).body.json()) as { host: string; jetstream?: { config?: { store_dir?: string } } }
  t.equal(varz.host, '127.0.0.1', 'bound to loopback only')
  t.match(varz.jetstream?.config?.store_dir, process.env.WHARF_TEST_HOME!, 'JetStream files under WHARF_HOME')
  t.match(testNatsUrl(), /^nats:\/\/127\.0\.0\.1:\d+$/)
})

t.test('Postgres answers as role wharf, listening on 127.0.0.1 only', async (t) => {
  const client = new pg.Client({ connectionString: testPgUrl() })
  await client.connect()
  t.teardown(() => client.end())
  const r = await client.query<{ u: string; db: string; listen: string; v: string }>(
    "select current_user as u, current_database() as db, current_setting('listen_addresses') as listen, current_setting('server_version_num') as v",
  )
  t.same({ u: r.rows[0]!.u, db: r.rows[0]!.db, listen: r.rows[0]!.listen }, { u: 'wharf', db: 'wharf', listen: '127.0.0.1' })
  t.ok(Number(r.rows[0]!.v) >= 150000, 'PostgreSQL 15 or newer')
})

t.test('Postgres refuses a wrong password', async (t) => {
  const url = new URL(testPgUrl())
  url.password = 'wrong'
  const client = new pg.Client({ connectionString: url.toString() })
  await t.rejects(client.connect(), /password authentication failed/)
  await client.end().catch(() => {})
})

t.test('nginx answers 404 for a host no app has', async (t) => {
  const res = await request(`http://127.0.0.1:${process.env.WHARF_TEST_ROUTER_PORT}/anything`, { headers: { host: 'nope.wharf.localhost' } })
  t.equal(res.statusCode, 404)
  t.match(await res.body.text(), /no app answers at this host/)
})

t.test('the registry answers the v2 API (with the credentials)', async (t) => {
  const res = await request(`http://${process.env.WHARF_TEST_REGISTRY}/v2/`, { headers: registryAuth() })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['docker-distribution-api-version'], 'registry/2.0')
  await res.body.dump()
})

t.test('Docker engine: swarm active, and FROM busybox builds and runs with no network', async (t) => {
  const docker = dockerClient(process.env.WHARF_TEST_DOCKER_HOST!)
  const info = (await docker.info()) as { Swarm: { LocalNodeState: string; ControlAvailable: boolean; NodeAddr: string } }
  t.equal(info.Swarm.LocalNodeState, 'active')
  t.equal(info.Swarm.ControlAvailable, true, 'a manager')
  t.equal(info.Swarm.NodeAddr, '127.0.0.1')

  const tag = `${process.env.WHARF_TEST_REGISTRY}/wharf-test-busybox:${process.pid}`
  const marker = `built-${Date.now()}`
  const stream = await docker.buildImage(
    tarOf({ Dockerfile: `FROM busybox\nRUN echo ${marker} > /marker && wget --help >/dev/null 2>&1\nCMD ["cat", "/marker"]\n` }),
    {
      t: tag,
      labels: { 'wharf.test': 'true' },
    },
  )
  const out = await new Promise<unknown[]>((resolve, reject) => docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))))
  t.notOk(
    out.some((o) => (o as { error?: string }).error),
    'no build error',
  )
  t.teardown(() =>
    docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => {}),
  )

  const container = await docker.createContainer({ Image: tag, Labels: { 'wharf.test': 'true' }, HostConfig: { NetworkMode: 'none' } })
  t.teardown(() => container.remove({ force: true }).catch(() => {}))
  await container.start()
  const exit = await container.wait()
  t.equal(exit.StatusCode, 0)
  const logs = (await container.logs({ stdout: true, stderr: true })) as Buffer
  t.match(logs.toString('latin1'), marker, 'the image has what the Dockerfile wrote')

  const push = await docker.getImage(tag).push({ authconfig: registryLogin() } as object)
  const pushed = await new Promise<unknown[]>((resolve, reject) => docker.modem.followProgress(push, (err, res) => (err ? reject(err) : resolve(res))))
  t.notOk(
    pushed.some((o) => (o as { error?: string }).error),
    'pushed to the registry',
  )
  const tags = (await (
    await request(`http://${process.env.WHARF_TEST_REGISTRY}/v2/wharf-test-busybox/tags/list`, { headers: registryAuth() })
  ).body.json()) as { tags: string[] }
  t.ok(tags.tags.includes(String(process.pid)), 'the registry lists the tag')
})
