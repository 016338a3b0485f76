import t from 'tap'
import { testNatsUrl, uniqueName } from '../test/harness.js'
import { connectJetStream, deleteStream, ensureStream, wharfStreamConfig } from './connection.js'

t.test('ensureStream creates a stream, is idempotent, updates its limits and refuses a name taken by other subjects', async (t) => {
  const { nc, jsm } = await connectJetStream({ servers: testNatsUrl(), name: 'wharf-connection-test' })
  const name = uniqueName('CONN').toUpperCase()
  const subject = `${name.toLowerCase()}.>`
  t.teardown(async () => {
    await deleteStream(jsm, name)
    await nc.close()
  })
  const config = wharfStreamConfig(name, subject, { maxAgeMs: 3_600_000, maxBytes: 1 << 20 })
  await ensureStream(jsm, config)
  await Promise.all([ensureStream(jsm, config), ensureStream(jsm, config)])
  t.match((await jsm.streams.info(name)).config, {
    subjects: [subject],
    max_age: 3_600_000_000_000,
    max_bytes: 1 << 20,
    duplicate_window: 120_000_000_000,
    allow_direct: true,
  })
  await ensureStream(jsm, wharfStreamConfig(name, subject, { maxAgeMs: 7_200_000, maxBytes: 1 << 21 }))
  t.match((await jsm.streams.info(name)).config, { max_age: 7_200_000_000_000, max_bytes: 1 << 21 })
  await t.rejects(ensureStream(jsm, wharfStreamConfig(name, 'elsewhere.>')), { code: 'WHARF_INTERNAL' })
  await deleteStream(jsm, name)
  await deleteStream(jsm, name)
  await t.rejects(jsm.streams.info(name))
})

t.test('connectJetStream: an unreachable server is WHARF_UNAVAILABLE', async (t) => {
  await t.rejects(connectJetStream({ servers: 'nats://127.0.0.1:1', name: 'wharf-connection-test' }), { code: 'WHARF_UNAVAILABLE' })
})
