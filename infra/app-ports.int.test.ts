/**
 * Issue 14, finding 8: an app's published port is not a way around the router. A client on a network
 * namespace of this test's own (a veth pair, 192.168.x.0/24) connects to this host's address on the
 * published port of a container (busybox httpd): the engine's firewall (the DOCKER-USER rules `make up`
 * and `make test` add, see infra/parts/docker.ts) drops it, while 127.0.0.1 (the router's way) answers.
 * A source listed in WHARF_APP_PORT_SOURCES (a worker's router host) gets through: shown with the same
 * rule for the test's address, which also shows that without the DROP the port would be open.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import t from 'tap'
import { testDocker } from '../services/builder/testing.js'
import { get } from '../test/http.js'
import { freeSubnet } from './hosts.js'
import { appPortRules } from './parts/docker.js'

const run = promisify(execFile)
t.setTimeout(120_000)

t.test("an app's published port answers on 127.0.0.1 only, not from the network", async (t) => {
  const docker = testDocker()
  const [drop] = appPortRules([])
  const present = await run('iptables', ['-w', '-C', 'DOCKER-USER', ...drop!]).then(
    () => true,
    () => false,
  )
  t.ok(present, 'the engine has the DROP rule for forwarded connections to published ports')

  const tag = randomBytes(3).toString('hex')
  const container = await docker.createContainer({
    name: `wharf-test-ports-${tag}`,
    Image: 'busybox',
    Cmd: ['sh', '-c', 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 5000 -h /www'],
    ExposedPorts: { '5000/tcp': {} },
    HostConfig: { PortBindings: { '5000/tcp': [{ HostPort: '' }] } },
  })
  t.teardown(() => container.remove({ force: true }).catch(() => {}))
  await container.start()
  const port = Number((await container.inspect()).NetworkSettings.Ports['5000/tcp']?.[0]?.HostPort)
  t.ok(port > 0, `published on host port ${port}`)

  // A namespace of this test's own, reaching this host at <subnet>.1 over a veth pair.
  const subnet = await freeSubnet(160, 199)
  const ns = `wpt${tag}`
  const veth = `wpt${tag}h`
  await run('ip', ['netns', 'add', ns])
  t.teardown(() => run('ip', ['netns', 'del', ns]).catch(() => {}))
  await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
  t.teardown(() => run('ip', ['link', 'del', veth]).catch(() => {}))
  await run('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', veth])
  await run('ip', ['link', 'set', veth, 'up'])
  for (const args of [
    ['addr', 'add', `${subnet}.2/24`, 'dev', 'eth0'],
    ['link', 'set', 'eth0', 'up'],
    ['link', 'set', 'lo', 'up'],
  ])
    await run('ip', ['netns', 'exec', ns, 'ip', ...args])
  // A GET from inside the namespace (this Node: busybox-static's wget crashes on this host).
  const client = `require('http').get(process.argv[1], { timeout: 3000 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(b.trim())) })
    .on('timeout', function () { console.log('failed: timeout'); this.destroy() }).on('error', (e) => console.log('failed: ' + e.message))`
  const fromNetwork = async () => {
    const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, '-e', client, `http://${subnet}.1:${port}/`])
    return stdout.trim().split('\n')[0]!
  }

  // The router's way: 127.0.0.1.
  let local = await get(port, '127.0.0.1', '/')
  for (let i = 0; local.status !== 200 && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100))
    local = await get(port, '127.0.0.1', '/')
  }
  t.equal(local.body.trim(), 'hello', 'the port answers on 127.0.0.1')
  t.match(await fromNetwork(), /^failed/, "from another machine's address the port does not answer")

  // A listed source (WHARF_APP_PORT_SOURCES) is let through; without the rule it would be too.
  const [, allow] = appPortRules([`${subnet}.2`])
  await run('iptables', ['-w', '-I', 'DOCKER-USER', '1', ...allow!])
  try {
    t.equal(await fromNetwork(), 'hello', 'a source of WHARF_APP_PORT_SOURCES reaches it')
  } finally {
    await run('iptables', ['-w', '-D', 'DOCKER-USER', ...allow!])
  }
  t.match(await fromNetwork(), /^failed/, 'and no one else again')
})
