import t from 'tap'
import { loadConfig } from './config.js'
import { checkAddress, checkTarget, outboundLookup, outboundPolicy, parseOutboundAllow, type OutboundPolicy } from './outbound.js'

const strict: OutboundPolicy = { allow: [], ownPorts: [8000, 14222] }
const code = (fn: () => unknown) => {
  try {
    fn()
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? 'thrown'
  }
}

t.test('refused without an exception: loopback, private, link-local, unspecified, multicast; public unicast goes', async (t) => {
  for (const a of [
    '127.0.0.1',
    '127.9.9.9',
    '10.1.2.3',
    '172.17.0.2',
    '192.168.1.1',
    '169.254.169.254',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '100.64.0.1',
  ]) {
    t.equal(
      code(() => checkAddress(strict, a, a, 443)),
      'WHARF_FORBIDDEN',
      `${a} refused`,
    )
  }
  for (const a of ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '1.1.1.1'])
    t.equal(
      code(() => checkAddress(strict, a, a, 443)),
      'ok',
      `${a} goes`,
    )
})

t.test("WHARF_OUTBOUND_ALLOW: host, host:port, CIDR; never the platform's own ports", async (t) => {
  const allow = parseOutboundAllow(' 127.0.0.1:9000 , 10.0.0.0/8, hooks.internal ,[::1]:7000')
  t.same(
    allow.map((r) => r.text),
    ['127.0.0.1:9000', '10.0.0.0/8', 'hooks.internal', '[::1]:7000'],
  )
  const p: OutboundPolicy = { allow, ownPorts: [8000, 9001] }
  t.equal(
    code(() => checkAddress(p, '127.0.0.1', '127.0.0.1', 9000)),
    'ok',
    'the listed host:port',
  )
  t.equal(
    code(() => checkAddress(p, '127.0.0.1', '127.0.0.1', 9002)),
    'WHARF_FORBIDDEN',
    'another port of it',
  )
  t.equal(
    code(() => checkAddress(p, '10.2.3.4', '10.2.3.4', 80)),
    'ok',
    'inside the CIDR',
  )
  t.equal(
    code(() => checkAddress(p, '192.168.0.1', '192.168.0.1', 80)),
    'WHARF_FORBIDDEN',
    'outside it',
  )
  t.equal(
    code(() => checkAddress(p, 'hooks.internal', '10.9.9.9', 80)),
    'ok',
    'a listed name, any port',
  )
  t.equal(
    code(() => checkAddress(p, '::1', '::1', 7000)),
    'ok',
    'IPv6 with a port',
  )
  const all: OutboundPolicy = { allow: parseOutboundAllow('127.0.0.1,::1'), ownPorts: [8000] }
  t.equal(
    code(() => checkAddress(all, '127.0.0.1', '127.0.0.1', 8000)),
    'WHARF_FORBIDDEN',
    'own port on loopback, although allowed',
  )
  t.equal(
    code(() => checkAddress(all, '::1', '::1', 8000)),
    'WHARF_FORBIDDEN',
    'own port on ::1 too',
  )
  t.equal(
    code(() => checkAddress(all, '127.0.0.1', '127.0.0.1', 8001)),
    'ok',
  )
  for (const bad of ['a b', '10.0.0.0/99', 'host:99999', 'x:y']) t.throws(() => parseOutboundAllow(bad), /WHARF_OUTBOUND_ALLOW/, bad)
  t.same(parseOutboundAllow(''), [])
  t.same(parseOutboundAllow(undefined), [])
})

t.test('a name is checked on every address it resolves to; one that does not resolve is refused', async (t) => {
  const resolver = (table: Record<string, string[]>) => async (h: string) => {
    if (!table[h]) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
    return table[h]!
  }
  const r = resolver({ 'a.example': ['93.184.216.34'], 'mixed.example': ['93.184.216.34', '10.0.0.1'], 'meta.example': ['169.254.169.254'] })
  await t.resolves(checkTarget(strict, 'a.example', 443, r))
  await t.rejects(checkTarget(strict, 'mixed.example', 443, r), { code: 'WHARF_FORBIDDEN' })
  await t.rejects(checkTarget(strict, 'meta.example', 80, r), { code: 'WHARF_FORBIDDEN' })
  await t.rejects(checkTarget(strict, 'nowhere.example', 80, r), { code: 'WHARF_INVALID' })
  await t.rejects(checkTarget(strict, 'localhost', 80), { code: 'WHARF_FORBIDDEN' }, 'localhost by the system resolver')
  await t.rejects(checkTarget(strict, '[::1]', 80), { code: 'WHARF_FORBIDDEN' })
})

t.test('the connection lookup refuses a name that rebinds to a refused address, and answers checked addresses', async (t) => {
  let answer = ['93.184.216.34']
  const lookup = outboundLookup(strict, 443, async () => answer)
  const call = (opts: { all?: boolean }) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((resolve) =>
      lookup('rebind.example', opts, (err, address) => resolve({ err, address })),
    )
  t.same((await call({ all: true })).address, [{ address: '93.184.216.34', family: 4 }])
  t.equal((await call({})).address, '93.184.216.34')
  answer = ['127.0.0.1']
  t.equal((await call({ all: true })).err?.code, 'WHARF_FORBIDDEN', 'the second resolution, to loopback, is refused at connect')
})

t.test("the platform's parts elsewhere (external NATS, Postgres, S3) are refused even when their network is allowed", async (t) => {
  const cfg = loadConfig(
    {
      WHARF_OUTBOUND_ALLOW: '10.0.0.0/8',
      WHARF_NATS_URL: 'nats://10.0.0.5:4222',
      WHARF_DATABASE_URL: 'postgres://wharf:x@db.internal:5432/wharf',
      WHARF_S3_ENDPOINT: 'http://10.0.0.7:7480',
      WHARF_S3_ACCESS_KEY: 'a',
      WHARF_S3_SECRET_KEY: 'b',
    },
    '/w',
  )
  const policy = outboundPolicy(cfg)
  t.throws(() => checkAddress(policy, '10.0.0.5', '10.0.0.5', 4222), { code: 'WHARF_FORBIDDEN', message: /one of the platform's parts/ })
  t.throws(() => checkAddress(policy, 'db.internal', '10.0.0.6', 5432), { code: 'WHARF_FORBIDDEN' })
  t.throws(() => checkAddress(policy, '10.0.0.7', '10.0.0.7', 7480), { code: 'WHARF_FORBIDDEN' })
  t.doesNotThrow(() => checkAddress(policy, '10.0.0.5', '10.0.0.5', 514), 'another port of an allowed network goes')
})
