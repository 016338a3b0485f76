import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger } from '../../core/log.js'
import { HostLiveness, hostsOf, type ProbeResult, splitPeer } from './liveness.js'

function logged() {
  const lines: { msg: string; host?: string; closed?: number }[] = []
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)))
      cb()
    },
  })
  return { lines, log: createLogger({ level: 'info', destination }) }
}

t.test('peers: host and port of IPv4 and [IPv6] peers; anything else and loopback left out', async (t) => {
  t.strictSame(splitPeer('192.168.200.13:32768'), { host: '192.168.200.13', port: 32768 })
  t.strictSame(splitPeer('[fd00::3]:80'), { host: 'fd00::3', port: 80 })
  for (const bad of ['host:80', '10.0.0.1', '10.0.0.1:0', '10.0.0.1:70000', '10.0.0.1:80; rm -rf /', '[fd00::3]', '']) t.equal(splitPeer(bad), undefined, bad)
  const hosts = hostsOf(['10.0.0.2:3002', '10.0.0.2:3001', '10.0.0.2:3002', '127.0.0.1:3000', '[::1]:3000', '[fd00::3]:80', 'junk'])
  t.strictSame(
    [...hosts],
    [
      ['10.0.0.2', [3001, 3002]],
      ['fd00::3', [80]],
    ],
  )
})

/** A liveness with probes answered from `verdicts` (host -> results in turn) and closes recorded. */
function driven(peers: () => string[] | undefined, verdicts: Record<string, ProbeResult[]>, misses = 2, retainMs = 0) {
  const probes: string[] = []
  const closed: { host: string; ports: readonly number[] }[] = []
  const { lines, log } = logged()
  const l = new HostLiveness({
    peers,
    log,
    misses,
    retainMs,
    probe: async (host, port) => {
      probes.push(`${host}:${port}`)
      return verdicts[host]?.shift() ?? 'answered'
    },
    closeConnections: async (host, ports) => {
      closed.push({ host, ports })
      return ports.length
    },
  })
  // One round: every host probed, the results observed.
  const round = async () => {
    l.tick()
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setImmediate(r))
  }
  return { l, probes, closed, lines, round }
}

t.test('a host silent for `misses` probes in a row has its connections closed once; answering again resets it', async (t) => {
  const d = driven(() => ['10.0.0.2:3001', '10.0.0.2:3002', '10.0.0.3:3001'], {
    '10.0.0.2': ['silent', 'silent', 'silent', 'answered', 'silent'],
    '10.0.0.3': ['silent', 'answered', 'silent', 'answered'],
  })
  await d.round()
  t.strictSame(d.closed, [], 'one miss is not enough')
  await d.round()
  t.strictSame(d.closed, [{ host: '10.0.0.2', ports: [3001, 3002] }], 'two in a row: every connection to its peer ports closed')
  t.strictSame(d.l.silent(), ['10.0.0.2'])
  t.strictSame(d.probes.slice(0, 4), ['10.0.0.2:3001', '10.0.0.3:3001', '10.0.0.2:3002', '10.0.0.3:3001'], 'the ports of a host probed in turn')
  await d.round()
  t.equal(d.closed.length, 1, 'closed once while it stays silent')
  t.notOk(
    d.closed.some((c) => c.host === '10.0.0.3'),
    'misses apart do not add up',
  )
  await d.round()
  t.strictSame(d.l.silent(), [], 'it answers again')
  t.ok(d.lines.some((l) => l.msg === 'router: a host answers again' && l.host === '10.0.0.2'))
  await d.round()
  t.equal(d.closed.length, 1, 'one miss after it came back is not enough')
  t.ok(d.lines.some((l) => l.msg.startsWith('router: a host answers no connection') && l.closed === 2))
  await d.l.stop()
})

t.test('loopback peers are never probed; a host no longer routed is forgotten (after retainMs, 0 here); unknown peers keep the last known', async (t) => {
  let peers: string[] | undefined = ['127.0.0.1:3000', '10.0.0.2:3001']
  const d = driven(() => peers, { '10.0.0.2': ['silent'] })
  await d.round()
  t.strictSame(d.probes, ['10.0.0.2:3001'])
  peers = undefined
  await d.round()
  t.strictSame(d.probes, ['10.0.0.2:3001', '10.0.0.2:3001'], 'still probed while the peers are unknown')
  peers = ['127.0.0.1:3000']
  await d.round()
  t.equal(d.probes.length, 2, 'gone from the routes: not probed')
  t.strictSame(d.closed, [], 'its misses were forgotten with it')
  await d.l.stop()
})

t.test('a host that left the routes lately is still probed, and closed when silent: requests sent to it before wait on it', async (t) => {
  let peers = ['10.0.0.2:3001', '10.0.0.3:3001']
  // Host 3's containers drained off the routes just as it was cut.
  const d = driven(() => peers, { '10.0.0.3': ['silent', 'silent'] }, 2, 60_000)
  await d.round()
  peers = ['10.0.0.2:3001']
  await d.round()
  t.strictSame(d.closed, [{ host: '10.0.0.3', ports: [3001] }], 'probed after it left the routes, its connections closed')
  t.strictSame(
    d.probes.filter((p) => p.startsWith('10.0.0.3')),
    ['10.0.0.3:3001', '10.0.0.3:3001'],
  )
  await d.l.stop()
})

t.test('closing refused (not root): said in the log, the host still taken for silent', async (t) => {
  const { lines, log } = logged()
  const l = new HostLiveness({
    peers: () => ['10.0.0.2:3001'],
    log,
    misses: 1,
    probe: async () => 'silent',
    closeConnections: async () => {
      throw new Error('ss: Operation not permitted')
    },
  })
  l.tick()
  await new Promise((r) => setImmediate(r))
  await new Promise((r) => setImmediate(r))
  t.strictSame(l.silent(), ['10.0.0.2'])
  t.ok(lines.some((x) => x.msg.includes('cannot be closed')))
  await l.stop()
})
