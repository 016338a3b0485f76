import { HeadBucketCommand, ListBucketsCommand } from '@aws-sdk/client-s3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import t from 'tap'
import { BUCKETS } from '../core/objectstore/objectstore.js'
import { s3Client } from '../core/objectstore/s3.js'
import { loadConfig, type WharfConfig } from '../core/config.js'
import { testS3 } from '../test/harness.js'
import { ceph } from './parts/ceph.js'
import { nats } from './parts/nats.js'
import { contextFor, down, up } from './platform.js'
import { livePid } from './proc.js'
import { freePort } from './test-env.js'

/** The store `make test` started: the gateway answers with Wharf's keys, and Wharf's buckets exist. */

t.test('the S3 gateway answers with Wharf keys and holds the four buckets', async (t) => {
  const s3 = testS3()
  const client = s3Client(s3)
  t.teardown(() => client.destroy())
  const { Buckets } = await client.send(new ListBucketsCommand({}))
  const names = (Buckets ?? []).map((b) => b.Name)
  for (const bucket of Object.values(BUCKETS)) {
    t.ok(names.includes(bucket), `bucket ${bucket} listed`)
    const head = await client.send(new HeadBucketCommand({ Bucket: bucket }))
    t.equal(head.$metadata.httpStatusCode, 200, `HeadBucket ${bucket}`)
  }
  t.same(Object.values(BUCKETS).sort(), ['wharf-backups', 'wharf-events', 'wharf-logs', 'wharf-registry'])
})

t.test('the gateway refuses wrong keys', async (t) => {
  const client = s3Client({ ...testS3(), secretKey: 'not-the-secret' }, { maxAttempts: 1 })
  t.teardown(() => client.destroy())
  const err = await client.send(new ListBucketsCommand({})).then(
    () => undefined,
    (e: unknown) => e as { $metadata?: { httpStatusCode?: number } },
  )
  t.equal(err?.$metadata?.httpStatusCode, 403)
})

const { endpoint } = testS3()
t.test(
  'a gateway of Wharf own answers on 127.0.0.1',
  { skip: new URL(endpoint).hostname !== '127.0.0.1' && `an external S3 (${endpoint}) is configured` },
  async (t) => {
    const res = await request(`${endpoint}/`)
    t.equal(res.statusCode, 200)
    t.match(await res.body.text(), /ListAllMyBucketsResult/, 'an anonymous ListBuckets answers')
  },
)

t.test('an external S3 that refuses the keys or does not answer: make up stops before starting anything', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wharf-s3-refused-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const s3 = testS3()
  const attempt = async (endpoint: string, secret: string) => {
    const base = loadConfig({ WHARF_HOME: home, WHARF_S3_ENDPOINT: endpoint, WHARF_S3_ACCESS_KEY: s3.accessKey, WHARF_S3_SECRET_KEY: secret })
    const cfg: WharfConfig = { ...base, ports: { ...base.ports, nats: await freePort(), natsMonitor: await freePort() } }
    const ctx = contextFor(cfg)
    t.teardown(() => down(ctx, [nats]).then(() => undefined))
    const err = await up(ctx, { real: [nats, ceph], services: false }).then(
      () => undefined,
      (e: Error) => e,
    )
    t.notOk(livePid(ctx.paths.nats.pid), `${endpoint}: NATS was not started`)
    return err?.message
  }
  t.match(
    await attempt(s3.endpoint, 'not-the-secret'),
    new RegExp(
      `^store: the S3 endpoint ${s3.endpoint.replaceAll('.', '\\.')} refused Wharf's keys for bucket \\S+ \\(403: wrong WHARF_S3_ACCESS_KEY / WHARF_S3_SECRET_KEY`,
    ),
  )
  const gone = `http://127.0.0.1:${await freePort()}`
  t.match(await attempt(gone, s3.secretKey), new RegExp(`^store: the S3 endpoint ${gone.replaceAll('.', '\\.')} cannot be reached`))
})
