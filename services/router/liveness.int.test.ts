/**
 * The liveness check's real parts on loopback: a TCP probe (a listener answers, a closed port
 * refuses: both are a live host), and `ss -K` closing the connections to given ports, which their
 * owner sees as an error at once (nginx then sends the request to another peer). The silent host
 * itself is infra/hosts-cut.int.test.ts (a host cut off in a network namespace).
 */
import net from 'node:net'
import t from 'tap'
import { ssKill, tcpProbe } from './liveness.js'

function listen(onConnection: (s: net.Socket) => void = () => {}): Promise<{ server: net.Server; port: number }> {
  return new Promise((resolve) => {
    const server = net
      .createServer((s) => {
        // The other end aborted is reset here: expected.
        s.on('error', () => {})
        onConnection(s)
      })
      .listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port }))
  })
}

t.test('a probe: a listener and a closed port both answer', async (t) => {
  const a = await listen((s) => s.destroy())
  t.teardown(() => a.server.close())
  t.equal(await tcpProbe('127.0.0.1', a.port, 1_000), 'answered')
  const b = await listen()
  const closedPort = b.port
  await new Promise((r) => b.server.close(r))
  t.equal(await tcpProbe('127.0.0.1', closedPort, 1_000), 'answered', 'refused is an answer')
})

t.test('ss -K closes the connections to the given ports only: a request waiting on one ends with an error at once', async (t) => {
  const sockets: net.Socket[] = []
  // Servers that read the request and never answer (a host gone silent, as its peer sees it).
  const silent = await listen((s) => sockets.push(s))
  const other = await listen((s) => sockets.push(s))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    silent.server.close()
    other.server.close()
  })
  const open = (port: number) =>
    new Promise<net.Socket>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => resolve(c))
      c.on('error', () => {})
    })
  const waiting = await open(silent.port)
  const kept = await open(other.port)
  waiting.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n')
  const ended = new Promise<string>((resolve) => waiting.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message)))
  const t0 = Date.now()
  const closed = await ssKill('127.0.0.1', [silent.port])
  t.ok(closed >= 1, `closed ${closed}`)
  t.equal(await ended, 'ECONNABORTED', 'the waiting request sees its connection aborted')
  t.ok(Date.now() - t0 < 2_000)
  t.notOk(kept.destroyed, 'a connection to another port is left alone')
  kept.destroy()
  waiting.destroy()
})
