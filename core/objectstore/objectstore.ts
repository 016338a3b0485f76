import type { Readable } from 'node:stream'

/** The buckets Wharf keeps its objects in; infra creates them on every start when missing. */
export const BUCKETS = {
  /** Docker Distribution's storage (its S3 driver). */
  registry: 'wharf-registry',
  /** Read-model database backups. */
  backups: 'wharf-backups',
  /** Compressed log archives, one object per app per hour. */
  logs: 'wharf-logs',
  /** Event-log exports (newline-delimited JSON). */
  events: 'wharf-events',
} as const

export type BucketName = (typeof BUCKETS)[keyof typeof BUCKETS]

/** What the store knows of one object. */
export interface ObjectInfo {
  key: string
  /** Bytes. */
  size: number
  lastModified: Date
  /** Set by `head` (and `put`'s answer) when the store keeps one. */
  contentType?: string
  /** The store's entity tag, without quotes; a multipart upload's ends in `-<parts>` on S3. */
  etag?: string
}

export interface PutOptions {
  /** Default `application/octet-stream`. */
  contentType?: string
}

/**
 * One bucket of objects, addressed by key. A `put` is all or nothing: a body that fails part-way
 * (a stream error, the gateway gone) leaves no object under the key, and never half of one.
 */
export interface ObjectStore {
  /** Stores `body` under `key`, replacing what was there. Streams and large bodies go up in parts. */
  put(key: string, body: Buffer | Readable, opts?: PutOptions): Promise<ObjectInfo>
  /** The object's bytes as a stream; `WHARF_NOT_FOUND` when there is no such key. */
  get(key: string): Promise<Readable>
  /** What the store knows of `key`, or undefined when there is no such key. */
  head(key: string): Promise<ObjectInfo | undefined>
  /** Every object whose key starts with `prefix` (default: all), in key order, fetched a page at a time. */
  list(prefix?: string): AsyncIterable<ObjectInfo>
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): Promise<void>
  /**
   * Aborts the unfinished uploads under `prefix` started before `before` (default: all): parts of a
   * put whose own abort failed (the store went away mid-upload). Never an object. Answers how many.
   */
  abortUploads(prefix: string, before?: Date): Promise<number>
}

/** The store as the services see it: one {@link ObjectStore} per bucket of {@link BUCKETS}. */
export type ObjectStores = { readonly [K in keyof typeof BUCKETS]: ObjectStore } & {
  /** Where the store answers, for messages (`http://127.0.0.1:7480`, or `memory`). */
  readonly endpoint: string
}
