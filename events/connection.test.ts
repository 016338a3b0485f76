import { DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType } from '@nats-io/jetstream'
import t from 'tap'
import { isJetStreamUnavailable, leastRecentlyDialled, wharfStreamConfig } from './connection.js'

const base = {
  storage: StorageType.File,
  retention: RetentionPolicy.Limits,
  discard: DiscardPolicy.Old,
  max_msgs: -1,
  max_msgs_per_subject: -1,
  num_replicas: 1,
  duplicate_window: 120_000_000_000,
  allow_direct: true,
}

t.test('the event log keeps everything, forever', async (t) => {
  t.strictSame(wharfStreamConfig('WHARF_EVENTS', 'wharf.ev.>'), { name: 'WHARF_EVENTS', subjects: ['wharf.ev.>'], ...base, max_bytes: -1, max_age: 0 })
})

t.test('the log plane is bounded by age (ns) and bytes', async (t) => {
  t.strictSame(wharfStreamConfig('WHARF_LOGS', 'wharf.logs.>', { maxAgeMs: 86_400_000, maxBytes: 1 << 30 }), {
    name: 'WHARF_LOGS',
    subjects: ['wharf.logs.>'],
    ...base,
    max_bytes: 1 << 30,
    max_age: 86_400_000_000_000,
  })
})

t.test('JetStream not answering for now (a meta leader election) is told apart from a refusal', async (t) => {
  const timeout = Object.assign(new Error('timeout'), { name: 'TimeoutError' })
  t.ok(isJetStreamUnavailable(timeout))
  t.ok(isJetStreamUnavailable(Object.assign(new Error('no responders: $JS.API.CONSUMER.CREATE'), { name: 'NoRespondersError' })))
  t.ok(isJetStreamUnavailable(new JetStreamApiError({ code: 503, err_code: 10008, description: 'JetStream system temporarily unavailable' })))
  t.notOk(isJetStreamUnavailable(new JetStreamApiError({ code: 404, err_code: 10059, description: 'stream not found' })))
  t.notOk(isJetStreamUnavailable(new JetStreamApiError({ code: 400, err_code: 10012, description: 'consumer name already in use' })))
  t.notOk(isJetStreamUnavailable(new Error('wrong last sequence')))
})

t.test('a reconnect dials the server of the cluster dialled least recently first, not the one just lost', async (t) => {
  const server = (listen: string, lastConnect: number) => ({
    hostname: listen.split(':')[0]!,
    port: 4222,
    listen,
    src: `nats://${listen}`,
    tlsName: '',
    reconnects: 0,
    lastConnect,
    gossiped: false,
    didConnect: lastConnect > 0,
  })
  // The first connect: none dialled, the library's (shuffled) pick.
  t.equal(leastRecentlyDialled([server('a:4222', 0), server('b:4222', 0), server('c:4222', 0)])?.listen, 'a:4222')
  // Connected to a, then lost it: nats.js puts a at the head again; another is dialled.
  t.equal(leastRecentlyDialled([server('a:4222', 1_000), server('b:4222', 0), server('c:4222', 0)])?.listen, 'b:4222')
  // b did not answer either: c, then round again from the oldest attempt.
  t.equal(leastRecentlyDialled([server('b:4222', 2_000), server('c:4222', 0), server('a:4222', 1_000)])?.listen, 'c:4222')
  t.equal(leastRecentlyDialled([server('c:4222', 3_000), server('a:4222', 1_000), server('b:4222', 2_000)])?.listen, 'a:4222')
  // One server (the platform's own): it, again and again.
  t.equal(leastRecentlyDialled([server('a:4222', 5_000)])?.listen, 'a:4222')
  t.equal(leastRecentlyDialled([]), null)
})
