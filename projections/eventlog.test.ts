import t from 'tap'
import type { RecordedEvent } from '../events/index.js'
import { appOf, redact, userOf } from './eventlog.js'

const ev = (stream: string, data: unknown): RecordedEvent => ({
  id: 'x', type: 'T', version: 1, stream, occurredAt: '2026-11-25T00:00:00.000Z', actor: 'user:a', causationId: null, correlationId: 'c', data, seq: 1,
})

t.test('redact hides secrets at any depth and keeps the rest', async (t) => {
  t.same(redact({ username: 'alice', passwordHash: 'scrypt$...', nested: { tokenHash: 'abc', keep: [1, { secretKey: 'k', ok: true }] } }), {
    username: 'alice',
    passwordHash: '[redacted]',
    nested: { tokenHash: '[redacted]', keep: [1, { secretKey: '[redacted]', ok: true }] },
  })
  t.equal(redact('plain'), 'plain')
  const pem = '-----BEGIN PRIVATE KEY-----\nMIGH...\n-----END PRIVATE KEY-----\n'
  t.same(redact({ name: 'shop', certificate: '-----BEGIN CERTIFICATE-----\nMII...', privateKey: pem }), { name: 'shop', certificate: '-----BEGIN CERTIFICATE-----\nMII...', privateKey: '[redacted]' }, 'a private key field')
  t.same(redact({ values: { TLS_KEY: pem.replace('PRIVATE', 'EC PRIVATE') } }), { values: { TLS_KEY: '[redacted]' } }, 'a private key PEM under any name')
  t.equal(redact(null), null)
})

t.test('appOf reads data.app, else an app or runtime stream id', async (t) => {
  t.equal(appOf(ev('build.0190', { app: 'shop' })), 'shop')
  t.equal(appOf(ev('app.shop', {})), 'shop')
  t.equal(appOf(ev('runtime.shop', {})), 'shop')
  t.equal(appOf(ev('user.alice', { username: 'alice' })), null)
})

t.test('userOf is the id of a user stream only', async (t) => {
  t.equal(userOf(ev('user.alice', {})), 'alice')
  t.equal(userOf(ev('app.alice', {})), null)
})
