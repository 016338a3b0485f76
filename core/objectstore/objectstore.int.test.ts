import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from '@aws-sdk/client-s3'
import t, { type Test } from 'tap'
import { testS3 } from '../../test/harness.js'
import { failingAfter, noise, objectStoreContract } from './objectstore.contract.js'
import { s3Client, S3ObjectStore } from './s3.js'

const client = s3Client(testS3())
t.teardown(() => client.destroy())

let n = 0
/** A bucket of the test's own (bucket names: lower case, digits, dashes), emptied and removed afterwards. */
async function freshBucket(t: Test): Promise<string> {
  const bucket = `wharf-test-${process.pid}-${Date.now().toString(36)}-${n++}`
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  t.teardown(async () => {
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
    for (const u of uploads.Uploads ?? []) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }))
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }))
      for (const o of page.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }))
      if (!page.IsTruncated) break
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }))
  })
  return bucket
}

await objectStoreContract(t, 'S3ObjectStore (radosgw)', {
  async create(t, opts = {}) {
    return new S3ObjectStore({ client, bucket: await freshBucket(t), ...opts })
  },
})

t.test('S3: a large stream is a multipart upload; a failed one leaves no upload open', async (t) => {
  const bucket = await freshBucket(t)
  const store = new S3ObjectStore({ client, bucket, partSize: 5 * 1024 * 1024 })
  const put = await store.put('mp/20mib', noise(20 * 1024 * 1024))
  t.match(put.etag, /-4$/, 'the ETag of a 4-part upload')
  await t.rejects(store.put('mp/broken', failingAfter(12 * 1024 * 1024)), /broke mid-upload/)
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
  t.same(uploads.Uploads ?? [], [], 'the failed upload was aborted, its parts are gone')
  t.equal(await store.head('mp/broken'), undefined)
})

t.test('S3: abortUploads removes unfinished uploads under a prefix, none elsewhere', async (t) => {
  const bucket = await freshBucket(t)
  const store = new S3ObjectStore({ client, bucket })
  const open = async (key: string) => (await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId
  await open('a/left-behind')
  await open('a/also')
  await open('b/other')
  t.equal(await store.abortUploads('a/', new Date(Date.now() - 3_600_000)), 0, 'none started an hour ago')
  t.equal(await store.abortUploads('a/'), 2)
  const left = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
  t.same(
    (left.Uploads ?? []).map((u) => u.Key),
    ['b/other'],
    'the other prefix keeps its upload',
  )
  t.equal(await store.head('a/left-behind'), undefined, 'never an object')
})

t.test('S3: a missing bucket is not a missing key', async (t) => {
  const store = new S3ObjectStore({ client, bucket: `wharf-test-none-${process.pid}` })
  await t.rejects(store.get('k'), { name: 'NoSuchBucket' })
})
