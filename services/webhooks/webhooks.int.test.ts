import { Webhook } from 'standardwebhooks'
import t, { type Test } from 'tap'
import { freePort } from '../../infra/test-env.js'
import { until } from '../../test/harness.js'
import { refused, registerAndLogin, startTestController, type TestController } from '../controller/testing.js'
import { startTestWebhooks, subscriber, type Received } from './testing.js'

async function createApp(c: TestController, token: string, name: string): Promise<void> {
  const res = await c.call('POST', '/v1/apps', { token, body: { name } })
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status}`)
}

async function setConfig(c: TestController, token: string, app: string, values: Record<string, string>): Promise<void> {
  const res = await c.call('POST', `/v1/apps/${app}/config`, { token, body: { values } })
  if (res.status !== 200) throw new Error(`config:set: ${res.status} ${JSON.stringify(res.body)}`)
}

async function addHook(c: TestController, token: string, body: Record<string, unknown>) {
  const res = await c.call('POST', '/v1/hooks', { token, body })
  if (res.status !== 201) throw new Error(`hooks:add: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body as { id: string; url: string; secret: string; events: string[] }
}

const hookOf = async (c: TestController, token: string, id: string) =>
  ((await c.call('GET', '/v1/hooks', { token })).body.hooks as { id: string; status: string; lastError: string | null }[]).find((h) => h.id === id)

/** Every event of the log of `type` (for the app), oldest first. */
const logEvents = async (c: TestController, token: string, query: string) =>
  (await c.call('GET', `/v1/events?limit=1000&${query}`, { token })).body.events as any[]

/** Verifies a delivery with the Standard Webhooks library, and answers the event it carried. */
function verified(t: Test, secret: string, r: Received): any {
  const ev = new Webhook(secret).verify(r.body, r.headers) as any
  t.equal(r.headers['webhook-id'], ev.id, 'webhook-id is the event id')
  return ev
}

t.test('a subscriber down while events happen gets every one once back, in order, signed; failing, recovered and attempts are recorded', async (t) => {
  const c = await startTestController(t, { WHARF_OUTBOUND_ALLOW: '127.0.0.1' })
  const alice = await registerAndLogin(c, 'alice')
  await createApp(c, alice, 'shop')
  await createApp(c, alice, 'other')
  const first = await startTestWebhooks(t, c)
  const port = await freePort()
  const sub = await subscriber(t, undefined, port)
  await sub.close() // down from the start
  const hook = await addHook(c, alice, { url: `http://127.0.0.1:${port}/in`, app: 'shop', events: ['Config*'] })
  t.match(hook.secret, /^whsec_[A-Za-z0-9+/]+=*$/, 'the secret is whsec_ + base64')
  t.same(hook.events, ['Config*'])

  for (let i = 0; i < 15; i++) await setConfig(c, alice, 'shop', { [`K${i}`]: `secret-value-${i}` })
  await setConfig(c, alice, 'other', { NOT: 'for this hook' })
  await until('the hook is failing', async () => (await hookOf(c, alice, hook.id))?.status === 'failing')
  await new Promise((r) => setTimeout(r, 1_500)) // a few retries while down
  await sub.listen(port)
  await until('every ConfigSet of shop arrived', async () => new Set(sub.got.map((r) => r.headers['webhook-id'])).size >= 15, 30_000)

  const expected = (await logEvents(c, alice, 'app=shop&type=ConfigSet')).map((e) => e.id)
  t.equal(expected.length, 15)
  const events = sub.got.map((r) => verified(t, hook.secret, r))
  const firsts = [...new Set(events.map((e) => e.id))]
  t.same(firsts, expected, 'every event, in log order, no gap, nothing of another app or type')
  t.ok(
    events.every((e, i) => i === 0 || e.seq >= events[i - 1].seq),
    'never out of order (a retry repeats only the event in hand)',
  )
  t.equal(events[0].type, 'ConfigSet')
  t.equal(events[0].app, 'shop')
  t.same(events[0].data.values, { K0: '[redacted]' }, 'config values redacted, as the events API shows them')
  t.notMatch(sub.got.map((r) => r.body).join(''), /secret-value/, 'no config value leaves the platform')
  const ts = Number(sub.got[0]!.headers['webhook-timestamp'])
  t.ok(Math.abs(ts - Date.now() / 1000) < 120, 'webhook-timestamp is now, in seconds')
  t.match(sub.got[0]!.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/)
  t.throws(() => new Webhook(hook.secret).verify(sub.got[0]!.body.replace('shop', 'shoq'), sub.got[0]!.headers), 'a tampered body fails verification')

  const admin = await until('HookDeliveryFailed and HookRecovered are in the log', async () => {
    const evs = await logEvents(c, alice, 'after=0')
    const types = evs.filter((e) => e.stream === `hook.${hook.id}`).map((e) => e.type)
    return types.includes('HookDeliveryFailed') && types.includes('HookRecovered') && types.includes('HookAttempts') && evs
  })
  const added = admin.find((e) => e.type === 'HookAdded')
  t.equal(added.data.secret, '[redacted]', 'the events API never shows the secret')
  await until('the hooks read model has it active again', async () => (await hookOf(c, alice, hook.id))?.status === 'active')
  const deliveries = await until('the attempts are recorded', async () => {
    const res = await c.call('GET', `/v1/hooks/${hook.id}/deliveries?limit=1000`, { token: alice })
    return res.body.attempts.some((a: any) => a.status === 204) && res.body.attempts
  })
  t.ok(
    deliveries.some((a: any) => a.status === 0 && /ECONNREFUSED/.test(a.error)),
    'the refused attempts are there, with their error',
  )
  t.ok(
    deliveries.every((a: any) => typeof a.durationMs === 'number' && !Number.isNaN(Date.parse(a.at))),
    'each with its time and duration',
  )
  t.notMatch(JSON.stringify((await c.call('GET', '/v1/hooks', { token: alice })).body), /whsec_/, 'hooks:list never shows the secret')
  t.notMatch(JSON.stringify(deliveries), /whsec_/)

  // Up to date (fed by the shared tail), then down again: the hook goes back to its own consumer and misses nothing.
  await sub.close()
  for (let i = 15; i < 20; i++) await setConfig(c, alice, 'shop', { [`K${i}`]: 'v' })
  await new Promise((r) => setTimeout(r, 600))
  await sub.listen(port)
  await until('the five sent while it was down again', async () => new Set(sub.got.map((r) => r.headers['webhook-id'])).size >= 20, 30_000)
  // The service restarts: the hook resumes from the position it saved; what came while it was stopped arrives.
  await first.stop()
  for (let i = 20; i < 25; i++) await setConfig(c, alice, 'shop', { [`K${i}`]: 'v' })
  await startTestWebhooks(t, c)
  await until('the five sent while the service was stopped', async () => new Set(sub.got.map((r) => r.headers['webhook-id'])).size >= 25, 30_000)
  const all = (await logEvents(c, alice, 'app=shop&type=ConfigSet')).map((e) => e.id)
  t.equal(all.length, 25)
  const seqs = sub.got.map((r) => verified(t, hook.secret, r).seq)
  t.same([...new Set(sub.got.map((r) => r.headers['webhook-id']))], all, 'all 25, in log order, across a second outage and a restart')
  t.ok(
    seqs.every((q, i) => i === 0 || q >= seqs[i - 1]!),
    'never out of order',
  )

  // Redeliver one past delivery: sent again with the same id, signed, and recorded as a redelivery.
  const before = sub.got.length
  const res = await c.call('POST', `/v1/hooks/${hook.id}/redeliver`, { token: alice, body: { delivery: expected[3] } })
  t.equal(res.status, 200, JSON.stringify(res.body))
  t.equal(res.body.attempt.status, 204)
  t.equal(res.body.attempt.delivery, expected[3])
  t.equal(sub.got.length, before + 1, 'one more POST')
  t.equal(verified(t, hook.secret, sub.got.at(-1)!).id, expected[3], 'the same event, verified')
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', `/v1/hooks/${hook.id}/redeliver`, { token: alice, body: { delivery: 'no-such-delivery' } })

  // Removed: nothing more is sent.
  t.equal((await c.call('DELETE', `/v1/hooks/${hook.id}`, { token: alice })).status, 200)
  const n = sub.got.length
  await setConfig(c, alice, 'shop', { AFTER: 'removal' })
  await new Promise((r) => setTimeout(r, 800))
  t.equal(sub.got.length, n, 'a removed hook gets nothing')
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'DELETE', `/v1/hooks/${hook.id}`, { token: alice })
})

t.test('3xx, 4xx, 5xx, a hang, a slow answer, an early close and 1 GB fail the attempt and are retried; each hook waits alone', async (t) => {
  const c = await startTestController(t, { WHARF_OUTBOUND_ALLOW: '127.0.0.1' })
  const alice = await registerAndLogin(c, 'alice')
  await createApp(c, alice, 'shop')
  await startTestWebhooks(t, c, { timeoutMs: 1_000, maxBodyBytes: 64 * 1024 })
  const seen = new Map<string, number>()
  let gigabyte = 0
  const sub = await subscriber(t, (req, res) => {
    const mode = req.url!.slice(1)
    const n = (seen.get(mode) ?? 0) + 1
    seen.set(mode, n)
    if (n > 1 || mode === 'ok') return void res.writeHead(200).end('ok')
    switch (mode) {
      case 'redirect':
        return void res.writeHead(302, { location: `http://127.0.0.1:${sub.port}/ok` }).end()
      case 'notfound':
        return void res.writeHead(404).end()
      case 'error':
        return void res.writeHead(500).end()
      case 'hang':
        return // never answers
      case 'slow':
        return void setTimeout(() => res.writeHead(200).end(), 2_500)
      case 'close':
        return void req.socket.destroy()
      case 'huge': {
        res.writeHead(200, { 'content-length': String(1024 ** 3) })
        const chunk = Buffer.alloc(64 * 1024, 120)
        const pump = () => {
          while (!res.destroyed && gigabyte < 1024 ** 3) {
            gigabyte += chunk.length
            if (!res.write(chunk)) return void res.once('drain', pump)
          }
        }
        res.on('close', () => {})
        return pump()
      }
    }
  })
  const modes = ['ok', 'redirect', 'notfound', 'error', 'hang', 'slow', 'close', 'huge']
  const hooks = new Map<string, string>()
  for (const m of modes) hooks.set(m, (await addHook(c, alice, { url: `http://127.0.0.1:${sub.port}/${m}`, app: 'shop', events: ['ConfigSet'] })).id)
  const t0 = Date.now()
  await setConfig(c, alice, 'shop', { A: '1' })
  await until('the good hook delivered', async () => seen.get('ok') === 1)
  t.ok(Date.now() - t0 < 900, `the good hook was not held up by the others (${Date.now() - t0} ms)`)
  await until('each misbehaving hook delivered on a later attempt', async () => modes.every((m) => m === 'ok' || (seen.get(m) ?? 0) >= 2), 30_000)
  t.ok(gigabyte < 64 * 1024 ** 2, `the 1 GB answer was cut off (${Math.round(gigabyte / 1024)} KiB were written)`)
  const errors: Record<string, string> = {}
  for (const m of modes) {
    const attempts = await until(`attempts of ${m}`, async () => {
      const a = (await c.call('GET', `/v1/hooks/${hooks.get(m)}/deliveries`, { token: alice })).body.attempts as any[]
      return a.some((x) => x.status === 200) && a
    })
    if (m === 'ok') {
      t.same(
        attempts.map((a) => a.status),
        [200],
        'ok: one attempt',
      )
      continue
    }
    t.equal(attempts.at(-1).status, 200, `${m}: delivered in the end`)
    errors[m] = attempts[0].error
    t.ok(attempts[0].error, `${m}: the first attempt failed: ${attempts[0].error}`)
  }
  t.match(errors.redirect, /HTTP 302.*not followed/)
  t.equal(seen.get('ok'), 1, 'the 302 was not followed')
  t.match(errors.notfound, /HTTP 404/)
  t.match(errors.error, /HTTP 500/)
  t.match(errors.hang, /within 1000 ms/)
  t.match(errors.slow, /within 1000 ms/)
  t.match(errors.close, /socket|closed|ECONNRESET/i)
  t.match(errors.huge, /larger than 65536 bytes/)
})

t.test('refused targets and bad URLs: a clear error with a code, nothing recorded; drains too', async (t) => {
  // No WHARF_OUTBOUND_ALLOW: this machine and private networks are refused.
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  await createApp(c, alice, 'shop')
  const port = await freePort()
  for (const url of [
    `http://127.0.0.1:${port}/`,
    'http://10.1.2.3/hook',
    'http://169.254.169.254/latest/meta-data',
    `http://[::1]:${port}/`,
    `http://localhost:${port}/`,
    'http://0.0.0.0/',
    'http://192.168.1.10/',
  ]) {
    const res = await refused(t, c, 403, 'WHARF_FORBIDDEN', 'POST', '/v1/hooks', { token: alice, body: { url, app: 'shop' } })
    t.match(res.body.message, /refused target .*WHARF_OUTBOUND_ALLOW/, url)
  }
  for (const url of ['ftp://example.com/', `http://u:p@example.com/`, `https://example.com/${'x'.repeat(2100)}`, 'not a url', 'http://example.com/#frag']) {
    await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/hooks', { token: alice, body: { url, app: 'shop' } })
  }
  await refused(t, c, 400, 'WHARF_INVALID', 'POST', '/v1/hooks', { token: alice, body: { url: 'https://example.com/', app: 'shop', events: ['config set'] } })
  // The same rule for log drains.
  for (const url of [`syslog://127.0.0.1:${port}`, 'syslog://10.0.0.1:514', `https://localhost:${port}/drain`, 'syslog+tls://169.254.169.254:6514']) {
    await refused(t, c, 403, 'WHARF_FORBIDDEN', 'POST', '/v1/apps/shop/drains', { token: alice, body: { url } })
  }
  t.same((await c.call('GET', '/v1/hooks', { token: alice })).body.hooks, [], 'no hook recorded')

  // Allowed by the operator, the platform's own ports stay refused.
  const c2 = await startTestController(t, { WHARF_OUTBOUND_ALLOW: '127.0.0.1,::1' })
  const bob = await registerAndLogin(c2, 'bob')
  await refused(t, c2, 403, 'WHARF_FORBIDDEN', 'POST', '/v1/hooks', { token: bob, body: { url: `http://127.0.0.1:${c2.deps.cfg.ports.nats}/` } })
  await refused(t, c2, 403, 'WHARF_FORBIDDEN', 'POST', '/v1/hooks', { token: bob, body: { url: `http://[::1]:${c2.deps.cfg.ports.postgres}/` } })
  t.equal((await c2.call('POST', '/v1/hooks', { token: bob, body: { url: `http://127.0.0.1:${port}/` } })).status, 201, 'another port: allowed')
})

t.test('access: app hooks need the app, platform hooks an admin; a second user sees and changes nothing of the first', async (t) => {
  const c = await startTestController(t, { WHARF_OUTBOUND_ALLOW: '127.0.0.1' })
  const alice = await registerAndLogin(c, 'alice') // the first user: an admin
  const bob = await registerAndLogin(c, 'bob')
  await createApp(c, alice, 'shop')
  await createApp(c, bob, 'bobs')
  const sub = await subscriber(t)
  await startTestWebhooks(t, c)
  const url = `http://127.0.0.1:${sub.port}/`
  const platform = await addHook(c, alice, { url, events: ['AppCreated'] })
  const mine = await addHook(c, alice, { url, app: 'shop' })
  await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', '/v1/hooks', { token: bob, body: { url, app: 'shop' } })
  await refused(t, c, 403, 'WHARF_FORBIDDEN', 'POST', '/v1/hooks', { token: bob, body: { url } })
  const bobs = await addHook(c, bob, { url, app: 'bobs', events: ['ConfigSet'] })
  t.same(
    (await c.call('GET', '/v1/hooks', { token: bob })).body.hooks.map((h: any) => h.id),
    [bobs.id],
    'bob sees only his own hook',
  )
  for (const id of [platform.id, mine.id]) {
    await refused(t, c, 404, 'WHARF_NOT_FOUND', 'DELETE', `/v1/hooks/${id}`, { token: bob })
    t.equal((await c.call('GET', `/v1/hooks/${id}/deliveries`, { token: bob })).status, 404)
    await refused(t, c, 404, 'WHARF_NOT_FOUND', 'POST', `/v1/hooks/${id}/redeliver`, { token: bob, body: { delivery: 'x' } })
  }
  t.equal(
    (await c.call('GET', '/v1/events?after=0&limit=1000', { token: bob })).body.events.filter((e: any) => e.stream.startsWith('hook.')).length,
    0,
    'nor in the events API',
  )
  // The platform hook gets an AppCreated of anyone's app; bob's hook only bob's app's ConfigSet.
  await createApp(c, bob, 'later')
  await setConfig(c, bob, 'bobs', { X: '1' })
  await until('both arrived', async () => sub.got.length >= 2)
  const types = sub.got.map((r) => JSON.parse(r.body)).map((e) => `${e.type} ${e.app}`)
  t.ok(types.includes('AppCreated later') && types.includes('ConfigSet bobs'), types.join(', '))
  t.notOk(
    types.some((x) => x.endsWith(' shop')),
    "nothing of alice's app went to bob's hook",
  )

  // bob destroys his app and makes another of the same name: his hook ended with the first one.
  t.equal((await c.call('DELETE', '/v1/apps/bobs', { token: bob, body: { confirm: 'bobs' } })).status, 200)
  await until("bob's hook is disabled with its app", async () => {
    const h = (await c.call('GET', '/v1/hooks', { token: bob })).body.hooks.find((x: any) => x.id === bobs.id)
    return h?.status === 'disabled' && /was destroyed/.test(h.lastError)
  })
  await createApp(c, bob, 'bobs')
  const configSets = () => sub.got.filter((r) => JSON.parse(r.body).type === 'ConfigSet').length
  const n = configSets()
  await setConfig(c, bob, 'bobs', { Y: '2' })
  await new Promise((r) => setTimeout(r, 800))
  t.equal(configSets(), n, 'the new app of the same name sends nothing to the old hook')
})

t.test('a hook that fails for the whole retry window is disabled, and an event says so', async (t) => {
  const c = await startTestController(t, { WHARF_OUTBOUND_ALLOW: '127.0.0.1' })
  const alice = await registerAndLogin(c, 'alice')
  await createApp(c, alice, 'shop')
  await startTestWebhooks(t, c, { minBackoffMs: 50, maxBackoffMs: 200, retryWindowMs: 1_500 })
  const dead = await freePort()
  const hook = await addHook(c, alice, { url: `http://127.0.0.1:${dead}/`, app: 'shop' })
  await setConfig(c, alice, 'shop', { A: '1' })
  const h = await until('disabled', async () => {
    const x = await hookOf(c, alice, hook.id)
    return x?.status === 'disabled' && x
  })
  t.match(h.lastError, /every attempt failed for \d+ s/)
  const evs = (await logEvents(c, alice, 'type=HookDisabled')).filter((e) => e.data.id === hook.id)
  t.equal(evs.length, 1, 'one HookDisabled')
  // A disabled hook sends nothing more, even when the subscriber is back.
  const sub = await subscriber(t, undefined, dead)
  await setConfig(c, alice, 'shop', { B: '2' })
  await new Promise((r) => setTimeout(r, 800))
  t.equal(sub.got.length, 0, 'nothing is sent to a disabled hook')
})
