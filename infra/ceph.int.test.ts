import { HeadBucketCommand, ListBucketsCommand } from '@aws-sdk/client-s3'
import { request } from 'undici'
import t from 'tap'
import { BUCKETS } from '../core/objectstore/objectstore.js'
import { s3Client } from '../core/objectstore/s3.js'
import { testS3 } from '../test/harness.js'

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
t.test('a gateway of Wharf own answers on 127.0.0.1', { skip: new URL(endpoint).hostname !== '127.0.0.1' && `an external S3 (${endpoint}) is configured` }, async (t) => {
  const res = await request(`${endpoint}/`)
  t.equal(res.statusCode, 200)
  t.match(await res.body.text(), /ListAllMyBucketsResult/, 'an anonymous ListBuckets answers')
})
