/**
 * The logger with logspout, a controller and real containers: lines in `GET /logs` and in the live
 * stream, platform events as `[wharf]` lines, the same permissions as the app, syslog input (TCP,
 * UDP, malformed frames counted), and drains that receive lines on local listeners while one that
 * points nowhere slows nothing.
 */
import { execFileSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { connect, createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import t, { type Test } from 'tap'
import { freePort } from '../../infra/test-env.js'
import { logInputToken, SyslogFramer, parseSyslog, type LogLine } from '../../logs/index.js'
import { until } from '../../test/harness.js'
import { testDocker, testEngine } from '../builder/testing.js'
import { refused, registerAndLogin, startTestController, type TestController } from '../controller/testing.js'
import { Logspout } from '../logspout/logspout.js'
import { runLabelled } from '../logspout/testing.js'
import { followLogs, startTestLogger } from './testing.js'

const docker = testDocker()
const engine = testEngine()

async function logs(c: TestController, token: string, app: string, query = ''): Promise<LogLine[]> {
  const res = await c.call('GET', `/v1/apps/${app}/logs${query}`, { token })
  if (res.status !== 200) throw new Error(`logs: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body.lines
}
const texts = (lines: LogLine[]) => lines.map((l) => l.text)

async function createApp(c: TestController, token: string, name: string): Promise<void> {
  const res = await c.call('POST', '/v1/apps', { token, body: { name } })
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status}`)
}

t.test('container lines in logs and logs -f, platform lines, --type, permissions', async (t) => {
  const c = await startTestController(t)
  const ns = c.deps.cfg.namespace
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  await startTestLogger(t, c)
  await createApp(c, alice, 'shop')
  const spout = await Logspout.start({ docker: engine, logs: c.deps.logger!.logs, log: c.deps.log, namespace: ns, reconnectMs: 100 })
  t.teardown(() => spout.stop())

  const live = await followLogs(c, alice, 'shop', '?lines=10')
  t.teardown(() => live.close())
  t.equal(live.status, 200)
  await runLabelled(t, docker, ns, 'shop', 'echo hello 1; echo hello 2 >&2; echo hello 3; sleep 1; echo later; sleep 60', { release: 2 })
  await runLabelled(t, docker, ns, 'shop', 'echo from the worker; sleep 60', { type: 'worker', release: 2 })

  const got = await until('the lines in logs', async () => {
    const l = await logs(c, alice, 'shop')
    return texts(l).includes('later') && texts(l).includes('from the worker') ? l : undefined
  })
  const app = got.filter((l) => l.source === 'app' && l.type === 'web')
  t.same(texts(app.filter((l) => l.stream === 'stdout')), ['hello 1', 'hello 3', 'later'], 'what the container printed, in order')
  t.match(
    app.find((l) => l.stream === 'stderr'),
    { app: 'shop', source: 'app', type: 'web', release: 2, text: 'hello 2', origin: /^[0-9a-f]{12}$/ },
    'stderr too (its order against stdout is up to the pipes)',
  )
  t.match(
    got.find((l) => l.source === 'wharf'),
    { source: 'wharf', text: 'app created by alice' },
    'the platform writes into the log',
  )
  t.same(texts(await logs(c, alice, 'shop', '?type=worker')), ['from the worker'], '--type worker')
  t.same(texts(await logs(c, alice, 'shop', '?lines=1')), [got.at(-1)!.text], '-n 1: the newest line')
  await until('logs -f sees the lines', async () => texts(live.lines).includes('later'))
  t.ok(texts(live.lines).includes('hello 1') && live.lines.every((l) => l.app === 'shop'), 'logs -f: the same lines')

  // A new line reaches a follower; so does a platform event.
  t.equal((await c.call('POST', '/v1/apps/shop/config', { token: alice, body: { values: { FOO: 'bar' } } })).status, 200)
  await until('a [wharf] line about the release in logs -f', async () =>
    live.lines.some((l) => l.source === 'wharf' && /^release v2 created by alice: alice set FOO$/.test(l.text)),
  )
  t.equal(new Set(live.lines.map((l) => l.id)).size, live.lines.length, 'logs -f repeats no line')

  // The same permissions as the app.
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', '/v1/apps/shop/logs', { token: bob })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', '/v1/apps/shop/logs/stream', { token: bob })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', '/v1/apps/nope/logs', { token: alice })
  await refused(t, c, 401, 'WHARF_UNAUTHORIZED', 'GET', '/v1/apps/shop/logs')
  await refused(t, c, 400, 'WHARF_INVALID', 'GET', '/v1/apps/shop/logs?lines=0', { token: alice })
  await refused(t, c, 400, 'WHARF_INVALID', 'GET', '/v1/apps/shop/logs?since=yesterday', { token: alice })
  t.equal((await c.call('POST', '/v1/apps/shop/perms', { token: alice, body: { username: 'bob' } })).status, 201)
  t.ok(texts(await logs(c, bob, 'shop')).includes('later'), 'a collaborator reads the log')
  t.ok(spout.health().ok)
})

t.test('without a logger: 503, said in one line', async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  await createApp(c, alice, 'shop')
  await refused(t, c, 503, 'WHARF_UNAVAILABLE', 'GET', '/v1/apps/shop/logs', { token: alice })
})

/** Sends `data` over a new TCP connection to 127.0.0.1:port and closes it. */
function tcpSend(port: number, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => s.end(data, () => resolve()))
    s.on('error', reject)
  })
}

async function logToken(c: TestController, token: string, app: string): Promise<string> {
  const res = await c.call('GET', `/v1/apps/${app}/logs/token`, { token })
  if (res.status !== 200) throw new Error(`logs/token: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body.token
}

t.test('syslog in: RFC 5424 and 3164, TCP and UDP, tagged by app-name and its token; malformed and unknown apps dropped', async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  await createApp(c, alice, 'shop')
  const server = await startTestLogger(t, c)
  const port = server.syslog!.port
  const tok = await logToken(c, alice, 'shop')
  t.match(tok, /^t\.[0-9a-f]{32}$/)
  const now = new Date().toISOString()
  const counted = `<14>1 ${now} edge shop web.2 - - ${tok} octet counted`
  await tcpSend(
    port,
    `${Buffer.byteLength(counted)} ${counted}<13>1 ${now} edge shop - - - ${tok} line feed\n<13>Mar  9 08:01:02 oldhost shop[42]: ${tok} rfc 3164\n`,
  )
  await tcpSend(port, `this is not syslog\n<14>1 - h nope - - - ${tok} for an app that does not exist\n`)
  const udp = createSocket('udp4')
  await new Promise<void>((r) => udp.send(`<11>1 ${now} edge shop worker.1 - - ${tok} over udp`, port, '127.0.0.1', () => r()))
  udp.close()
  const lines = await until('the syslog lines', async () => {
    const l = (await logs(c, alice, 'shop')).filter((x) => x.source === 'syslog')
    return l.length >= 4 ? l : undefined
  })
  t.same(texts(lines).sort(), ['line feed', 'octet counted', 'over udp', 'rfc 3164'], 'filed without the token')
  t.match(
    lines.find((l) => l.text === 'octet counted'),
    { source: 'syslog', type: 'web', number: 2, origin: 'edge', stream: 'stdout' },
  )
  t.match(
    lines.find((l) => l.text === 'over udp'),
    { type: 'worker', number: 1, stream: 'stderr' },
    'severity error: stderr',
  )
  t.match(server.syslog!.stats, { malformed: 1, unknownApp: 1, badToken: 0 })
})

t.test("syslog in: another user's program naming alice's app, with no token or a wrong one, gets nothing into her log or drains", async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  const bob = await registerAndLogin(c, 'bob')
  await createApp(c, alice, 'shop')
  await createApp(c, bob, 'bobapp')
  const server = await startTestLogger(t, c)
  const port = server.syslog!.port
  const aliceTok = await logToken(c, alice, 'shop')
  const bobTok = await logToken(c, bob, 'bobapp')
  t.not(bobTok, aliceTok, 'each app its own token')
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'GET', '/v1/apps/shop/logs/token', { token: bob })
  await refused(t, c, 401, 'WHARF_UNAUTHORIZED', 'GET', '/v1/apps/shop/logs/token')

  // Bob's program: alice's app named, with no token, his own app's, a made-up one, and one for alice's
  // app on a platform with another secret; over TCP and UDP, RFC 5424 and 3164.
  const now = new Date().toISOString()
  const forged = ['', `${bobTok} `, `t.${'0'.repeat(32)} `, `${logInputToken('not the platform secret', 'shop', new Date())} `]
  await tcpSend(port, forged.map((f, i) => `<14>1 ${now} bobhost shop web.1 - - ${f}forged ${i}\n`).join(''))
  await tcpSend(port, `<13>Mar  9 08:01:02 bobhost shop[1]: forged 3164\n`)
  const udp = createSocket('udp4')
  await new Promise<void>((r) => udp.send(`<14>1 ${now} bobhost shop web.1 - - forged udp`, port, '127.0.0.1', () => r()))
  udp.close()
  // Then lines each with its app's token: they arrive, so the forged ones (sent before) had their turn.
  await tcpSend(port, `<14>1 ${now} edge shop web.1 - - ${aliceTok} alice's own\n<14>1 ${now} bobhost bobapp web.1 - - ${bobTok} bob's own\n`)
  await until("alice's and bob's own lines", async () => {
    const [a, b] = [await logs(c, alice, 'shop'), await logs(c, bob, 'bobapp')]
    return texts(a).includes("alice's own") && texts(b).includes("bob's own")
  })
  await until('the UDP datagram was read', async () => server.syslog!.stats.received >= 8)
  t.same(texts((await logs(c, alice, 'shop')).filter((l) => l.source === 'syslog')), ["alice's own"], "nothing of bob's program in alice's log")
  t.match(server.syslog!.stats, { badToken: 6, unknownApp: 0, malformed: 0 }, 'each dropped and counted')

  // The name created again is a new app with a new token: the old one files nothing under it.
  t.equal((await c.call('DELETE', '/v1/apps/shop', { token: alice, body: { confirm: 'shop' } })).status, 200, 'apps:destroy')
  await createApp(c, bob, 'shop')
  const newTok = await logToken(c, bob, 'shop')
  t.not(newTok, aliceTok, 'a reused name gets a new token')
  await until("the logger knows bob's shop", async () => {
    await tcpSend(port, `<14>1 ${now} edge shop web.1 - - ${newTok} probe\n`)
    return texts(await logs(c, bob, 'shop')).includes('probe')
  })
  const before = server.syslog!.stats.badToken
  await tcpSend(port, `<14>1 ${now} edge shop web.1 - - ${aliceTok} with the old token\n<14>1 ${now} edge shop web.1 - - ${newTok} after\n`)
  await until('the line after', async () => texts(await logs(c, bob, 'shop')).includes('after'))
  t.notOk(texts(await logs(c, bob, 'shop')).includes('with the old token'), "the destroyed app's token files nothing")
  t.equal(server.syslog!.stats.badToken, before + 1)
})

/** A syslog drain's receiving end: TCP, or TLS with `tls`; answers the port and the messages it got. */
async function syslogListener(t: Test, tls?: { key: Buffer; cert: Buffer }): Promise<{ port: number; got: string[] }> {
  const got: string[] = []
  const onSocket = (s: import('node:net').Socket) => {
    const f = new SyslogFramer(
      (b) => got.push(parseSyslog(b.toString()).message),
      () => got.push('MALFORMED'),
    )
    s.on('data', (d: Buffer) => f.push(d))
    s.on('error', () => {})
  }
  const server: Server = tls ? createTlsServer(tls, onSocket) : createServer(onSocket)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const sockets = new Set<import('node:net').Socket>()
  server.on(tls ? 'secureConnection' : 'connection', (s: import('node:net').Socket) => sockets.add(s))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((r) => server.close(() => r()))
  })
  return { port: (server.address() as { port: number }).port, got }
}

/** A self-signed certificate for 127.0.0.1 (an IP SAN). */
function ipCert(t: Test): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-drain-cert-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'k.pem'),
      '-out',
      join(dir, 'c.pem'),
    ],
    { stdio: 'ignore' },
  )
  return { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }
}

t.test('drains: syslog, syslog+tls and https receive lines; one that points nowhere slows nothing; bad URLs refused', async (t) => {
  // The drains point at this machine: allowed for the test (WHARF_OUTBOUND_ALLOW), refused otherwise.
  const c = await startTestController(t, { WHARF_OUTBOUND_ALLOW: '127.0.0.1' })
  const alice = await registerAndLogin(c, 'alice')
  await createApp(c, alice, 'shop')
  const pem = ipCert(t)
  const server = await startTestLogger(t, c, { drains: { minBackoffMs: 50, maxBackoffMs: 200, ca: pem.cert } })
  const plain = await syslogListener(t)
  const secure = await syslogListener(t, pem)
  const posted: string[] = []
  const https = createHttpsServer(pem, (req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => (body += d.toString()))
    req.on('end', () => {
      const f = new SyslogFramer(
        (b) => posted.push(`${req.headers['content-type']} ${parseSyslog(b.toString()).message}`),
        () => posted.push('MALFORMED'),
      )
      f.push(Buffer.from(body))
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => {
    https.closeAllConnections()
    return new Promise<void>((r) => https.close(() => r()))
  })
  const nowhere = await freePort()

  const add = (url: string) => c.call('POST', '/v1/apps/shop/drains', { token: alice, body: { url } })
  for (const url of [
    `syslog://127.0.0.1:${nowhere}`,
    `syslog://127.0.0.1:${plain.port}`,
    `syslog+tls://127.0.0.1:${secure.port}`,
    `https://127.0.0.1:${(https.address() as { port: number }).port}/drain`,
  ]) {
    t.equal((await add(url)).status, 201, `drains:add ${url}`)
  }
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/drains', { token: alice, body: { url: 'ftp://127.0.0.1:21' } })
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/apps/shop/drains', { token: alice, body: { url: 'syslog://127.0.0.1' } })
  await refused(t, c, 409, 'WHARF_EXISTS', 'POST', '/v1/apps/shop/drains', { token: alice, body: { url: `syslog://127.0.0.1:${plain.port}` } })
  const list = (await c.call('GET', '/v1/apps/shop/drains', { token: alice })).body.drains as { id: string; url: string }[]
  t.equal(list.length, 4)
  await until('the logger runs the four drains', async () => server.drains.stats('shop').length === 4)

  // Lines through the syslog receiver, and a platform line.
  const now = new Date().toISOString()
  const tok = await logToken(c, alice, 'shop')
  await tcpSend(server.syslog!.port, Array.from({ length: 50 }, (_, i) => `<14>1 ${now} h shop web.1 - - ${tok} drained ${i}\n`).join(''))
  const want = Array.from({ length: 50 }, (_, i) => `drained ${i}`)
  await until('the syslog drain got every line', async () => want.every((w) => plain.got.includes(w)))
  await until('the TLS drain got every line', async () => want.every((w) => secure.got.includes(w)))
  await until('the https drain got every line', async () => want.every((w) => posted.includes(`application/logplex-1 ${w}`)))
  t.same(
    plain.got.filter((g) => g.startsWith('drained')),
    want,
    'in order',
  )
  const dead = server.drains.stats('shop').find((d) => d.url.endsWith(`:${nowhere}`))!
  t.ok(dead.failures > 0 && dead.sent === 0, 'the drain that points nowhere is retried, and sent nothing')

  // Remove by id; the logger stops delivering to it.
  const id = list.find((d) => d.url === `syslog://127.0.0.1:${plain.port}`)!.id
  t.equal((await c.call('DELETE', `/v1/apps/shop/drains/${id}`, { token: alice })).status, 200)
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'DELETE', `/v1/apps/shop/drains/${id}`, { token: alice })
  await until('the logger let the drain go', async () => server.drains.stats('shop').length === 3)
})
