/**
 * Log archives against the real store (the test's Ceph RADOS Gateway, WHARF_TEST_S3_*): finished
 * hours become one gzip object per app per hour, late lines are appended, a restarted archiver does
 * not write again, and `GET /logs?since=` reads the archives back merged with the stream, after the
 * stream itself lost the lines.
 */
import { createGunzip } from 'node:zlib'
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { jetstreamManager } from '@nats-io/jetstream'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { s3Client, S3ObjectStore } from '../../core/objectstore/index.js'
import type { LogLine, LogStream } from '../../logs/index.js'
import { testS3 } from '../../test/harness.js'
import { registerAndLogin, startTestController } from '../controller/testing.js'
import { Archiver, archiveKey, hourOf } from './archive.js'
import { startTestLogger } from './testing.js'

const client = s3Client(testS3())
t.teardown(() => client.destroy())

async function freshBucket(t: Test): Promise<S3ObjectStore> {
  const bucket = `wharf-test-logs-${process.pid}-${Date.now().toString(36)}`
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  t.teardown(async () => {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }))
    for (const o of page.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }))
    await client.send(new DeleteBucketCommand({ Bucket: bucket }))
  })
  return new S3ObjectStore({ client, bucket })
}

async function objectLines(objects: S3ObjectStore, key: string): Promise<string[]> {
  let text = ''
  for await (const chunk of (await objects.get(key)).pipe(createGunzip())) text += chunk.toString()
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as LogLine).text)
}

const HOUR = 3_600_000
let n = 0
/** Publishes lines of `app` as a container would (times given), answers the stream sequence. */
async function publish(logs: LogStream, app: string, lines: [time: number, text: string][]): Promise<number> {
  const ack = await logs.publish(
    logs.subjects.subjectOf(app, 'aaaaaaaaaaaa'),
    { app, source: 'app', type: 'web', number: 1, release: 1, lines: lines.map(([time, text]) => [new Date(time).toISOString(), 0, text]) },
    `test-${process.pid}-${++n}`,
  )
  return ack.seq
}

t.test('finished hours go to the store, late lines are appended, --since reads them back', async (t) => {
  const c = await startTestController(t)
  const alice = await registerAndLogin(c, 'alice')
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })).status, 201)
  const objects = await freshBucket(t)
  const server = await startTestLogger(t, c, { objects, archiveEveryMs: HOUR })
  const logs = c.deps.logger!.logs
  const now = Date.now()
  const h3 = hourOf(new Date(now - 3 * HOUR).toISOString())
  const h2 = h3 + HOUR
  let seq = await publish(logs, 'shop', [
    [h3 + 1_000, 'three hours ago'],
    [h3 + 2_000, 'still then'],
    [h2 + 5, 'two hours ago'],
    [now, 'this hour'],
  ])
  const caughtUp = async (s: number) => {
    for (const end = Date.now() + 10_000; server.seq < s; await sleep(20)) if (Date.now() > end) throw new Error('the logger did not catch up')
  }
  await caughtUp(seq)

  t.equal(await server.archiver!.tick(now), 2, 'two finished hours written; this hour is not over')
  t.same(await objectLines(objects, archiveKey('shop', h3)), ['three hours ago', 'still then'])
  t.same(await objectLines(objects, archiveKey('shop', h2)), ['two hours ago'])
  t.match(archiveKey('shop', h3), /^shop\/\d{4}-\d{2}-\d{2}\/\d{2}\.ndjson\.gz$/)
  t.equal(await server.archiver!.tick(now), 0, 'nothing new: nothing written')

  seq = await publish(logs, 'shop', [[h3 + 3_000, 'a late line of three hours ago']])
  await caughtUp(seq)
  t.equal(await server.archiver!.tick(now), 1, 'the late line is appended to its hour')
  t.same(await objectLines(objects, archiveKey('shop', h3)), ['three hours ago', 'still then', 'a late line of three hours ago'])

  // A restarted archiver learns the hours again from the stream and finds them written.
  const again = new Archiver({ objects, logs, log: c.deps.log, retentionMs: 24 * HOUR })
  for await (const b of logs.read(logs.subjects.all))
    again.note(
      b.batch.app,
      b.batch.lines.map(([time, , text], i) => ({ id: `${b.seq}.${i}`, time, app: b.batch.app, source: 'app' as const, text })),
      b.seq,
    )
  t.equal(await again.tick(now), 0, 'after a restart: nothing written twice')

  // The stream forgets; the archives remember.
  await (await jetstreamManager(logs.nc)).streams.purge(logs.subjects.stream)
  seq = await publish(logs, 'shop', [[now + 1, 'after the purge']])
  await caughtUp(seq)
  const since = new Date(h3).toISOString()
  const res = await c.call('GET', `/v1/apps/shop/logs?since=${encodeURIComponent(since)}&lines=100`, { token: alice })
  t.equal(res.status, 200)
  t.same(
    (res.body.lines as LogLine[]).map((l) => l.text),
    ['three hours ago', 'still then', 'a late line of three hours ago', 'two hours ago', 'after the purge'],
    'archives and stream merged by time ("this hour" was in neither any more)',
  )
  const later = await c.call('GET', `/v1/apps/shop/logs?since=${encodeURIComponent(new Date(h2).toISOString())}`, { token: alice })
  t.same(
    (later.body.lines as LogLine[]).map((l) => l.text),
    ['two hours ago', 'after the purge'],
    'since cuts inside the archives too',
  )

  // Destroyed: the lines and the archives go, so an app created again under the name reads none.
  t.equal((await c.call('DELETE', '/v1/apps/shop', { token: alice, body: { confirm: 'shop' } })).status, 200)
  for (const end = Date.now() + 10_000; ; await sleep(50)) {
    const left: string[] = []
    for await (const o of objects.list('shop/')) left.push(o.key)
    if (left.length === 0) break
    if (Date.now() > end) throw new Error(`archives left after apps:destroy: ${left.join(' ')}`)
  }
  t.equal((await c.call('POST', '/v1/apps', { token: alice, body: { name: 'shop' } })).status, 201)
  const reborn = await c.call('GET', `/v1/apps/shop/logs?since=${encodeURIComponent(since)}&lines=100`, { token: alice })
  t.same(
    (reborn.body.lines as LogLine[]).filter((l) => l.source !== 'wharf').map((l) => l.text),
    [],
    'the new app of the same name has no line of the old one, archived or in the stream',
  )
})
