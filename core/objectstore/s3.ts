import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import type { Readable } from 'node:stream'
import type { S3Config } from '../config.js'
import { notFound } from './memory.js'
import { BUCKETS, type ObjectInfo, type ObjectStore, type ObjectStores, type PutOptions } from './objectstore.js'

/**
 * An S3 client for `cfg`: path-style addressing (radosgw and most self-hosted S3 have no
 * per-bucket host names), bounded retries. The caller destroys it.
 */
export function s3Client(
  cfg: Pick<S3Config, 'endpoint' | 'accessKey' | 'secretKey' | 'region'>,
  opts: {
    /** Tries per request, default 3. */
    maxAttempts?: number
    /** TCP connect timeout, ms, default 5_000. */
    connectionTimeoutMs?: number
    /** Idle socket timeout per request, ms, default 60_000. */
    requestTimeoutMs?: number
  } = {},
): S3Client {
  return new S3Client({
    requestHandler: { connectionTimeout: opts.connectionTimeoutMs ?? 5_000, requestTimeout: opts.requestTimeoutMs ?? 60_000 },
    endpoint: cfg.endpoint,
    region: cfg.region,
    forcePathStyle: true,
    credentials: { accessKeyId: cfg.accessKey, secretAccessKey: cfg.secretKey },
    maxAttempts: opts.maxAttempts ?? 3,
  })
}

export interface S3ObjectStoreOptions {
  client: S3Client
  bucket: string
  /** Keys per `ListObjectsV2` page, default 1000 (S3's maximum). */
  pageSize?: number
  /** Bytes per part of a multipart upload, default 8 MiB (S3's minimum is 5 MiB). */
  partSize?: number
  /** Parts uploaded at once, default 4. */
  queueSize?: number
}

/** An {@link ObjectStore} over one bucket of an S3 API (`@aws-sdk/client-s3`, `@aws-sdk/lib-storage`). */
export class S3ObjectStore implements ObjectStore {
  readonly client: S3Client
  readonly bucket: string
  readonly #pageSize: number
  readonly #partSize: number
  readonly #queueSize: number

  constructor(opts: S3ObjectStoreOptions) {
    this.client = opts.client
    this.bucket = opts.bucket
    this.#pageSize = opts.pageSize ?? 1000
    this.#partSize = opts.partSize ?? 8 * 1024 * 1024
    this.#queueSize = opts.queueSize ?? 4
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions = {}): Promise<ObjectInfo> {
    const contentType = opts.contentType ?? 'application/octet-stream'
    // One PutObject when the body fits in a part, else a multipart upload that is aborted when the
    // body or a part fails (leavePartsOnError false): no object appears, no parts stay behind.
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType },
      partSize: this.#partSize,
      queueSize: this.#queueSize,
      leavePartsOnError: false,
    })
    await upload.done()
    const info = await this.head(key)
    if (!info) throw new Error(`object ${key} is missing right after its upload to ${this.bucket}`)
    return info
  }

  async get(key: string): Promise<Readable> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }))
      return res.Body as Readable
    } catch (err) {
      // NoSuchKey only: a missing bucket is a wrong setting, not a missing object.
      if (err instanceof S3ServiceException && err.name === 'NoSuchKey') throw notFound(key, err)
      throw err
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))
      return {
        key,
        size: res.ContentLength ?? 0,
        lastModified: res.LastModified ?? new Date(0),
        ...(res.ContentType ? { contentType: res.ContentType } : {}),
        ...(res.ETag ? { etag: res.ETag.replaceAll('"', '') } : {}),
      }
    } catch (err) {
      // HEAD has no body to name the error: a bare 404.
      if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return undefined
      throw err
    }
  }

  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    let token: string | undefined
    do {
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: this.#pageSize, ContinuationToken: token }))
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined) continue
        yield { key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0), ...(o.ETag ? { etag: o.ETag.replaceAll('"', '') } : {}) }
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined
    } while (token)
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }))
  }

  async abortUploads(prefix: string, before?: Date): Promise<number> {
    let aborted = 0
    let keyMarker: string | undefined
    let uploadIdMarker: string | undefined
    do {
      const res = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      )
      for (const u of res.Uploads ?? []) {
        if (before && u.Initiated && u.Initiated >= before) continue
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }))
        aborted++
      }
      keyMarker = res.IsTruncated ? res.NextKeyMarker : undefined
      uploadIdMarker = res.IsTruncated ? res.NextUploadIdMarker : undefined
    } while (keyMarker)
    return aborted
  }
}

/**
 * Checks that the endpoint answers with the keys and creates Wharf's buckets that are missing
 * (`create: false`: a missing bucket is an error instead). A clear error naming the endpoint when it
 * cannot be reached or refuses the keys.
 */
export async function ensureBuckets(s3: S3Config, opts: { create?: boolean } = {}): Promise<void> {
  const client = s3Client(s3, { maxAttempts: 1, connectionTimeoutMs: 3_000, requestTimeoutMs: 10_000 })
  try {
    for (const bucket of Object.values(BUCKETS)) {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }))
        continue
      } catch (err) {
        if (!(err instanceof S3ServiceException) || err.$metadata.httpStatusCode !== 404) throw s3Error(s3, bucket, err)
        if (opts.create === false) throw new Error(`store: the S3 endpoint ${s3.endpoint} has no bucket ${bucket}`, { cause: err })
      }
      try {
        await client.send(new CreateBucketCommand({ Bucket: bucket }))
      } catch (err) {
        if (!(err instanceof S3ServiceException && err.name === 'BucketAlreadyOwnedByYou')) throw s3Error(s3, bucket, err)
      }
    }
  } finally {
    client.destroy()
  }
}

function s3Error(s3: S3Config, bucket: string, err: unknown): Error {
  const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined
  const keys = s3.external ? 'WHARF_S3_ACCESS_KEY / WHARF_S3_SECRET_KEY' : 'the keys in secrets/s3.json'
  const why =
    status === 403
      ? `refused Wharf's keys for bucket ${bucket} (403: wrong ${keys}, or the bucket belongs to another account)`
      : status
        ? `answered ${status} ${(err as Error).name} for bucket ${bucket}`
        : `cannot be reached (${(err as Error).message || (err as Error).name})`
  return new Error(`store: the S3 endpoint ${s3.endpoint} ${why}`, { cause: err })
}

/** One {@link S3ObjectStore} per Wharf bucket, sharing `client`. */
export function s3ObjectStores(client: S3Client, endpoint: string): ObjectStores {
  return {
    endpoint,
    registry: new S3ObjectStore({ client, bucket: BUCKETS.registry }),
    backups: new S3ObjectStore({ client, bucket: BUCKETS.backups }),
    logs: new S3ObjectStore({ client, bucket: BUCKETS.logs }),
    events: new S3ObjectStore({ client, bucket: BUCKETS.events }),
  }
}
