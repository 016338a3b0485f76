import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import type { Readable } from 'node:stream'
import type { S3Config } from '../config.js'
import { notFound } from './memory.js'
import type { ObjectInfo, ObjectStore, PutOptions } from './objectstore.js'

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
      const res = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: this.#pageSize, ContinuationToken: token }),
      )
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
}
