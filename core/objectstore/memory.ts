import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { WharfError } from '../errors.js'
import type { ObjectInfo, ObjectStore, PutOptions } from './objectstore.js'

interface Stored {
  body: Buffer
  info: ObjectInfo
}

/** An {@link ObjectStore} in this process's memory, for unit tests. */
export class MemoryObjectStore implements ObjectStore {
  readonly #objects = new Map<string, Stored>()
  readonly #pageSize: number

  /** `pageSize`: objects per page `list` takes from its snapshot, default 1000 (as S3). */
  constructor(opts: { pageSize?: number } = {}) {
    this.#pageSize = opts.pageSize ?? 1000
  }

  async put(key: string, body: Buffer | Readable, opts: PutOptions = {}): Promise<ObjectInfo> {
    // Read it all before storing, so a body that fails part-way leaves nothing behind.
    const bytes = Buffer.isBuffer(body) ? Buffer.from(body) : await collect(body)
    const info: ObjectInfo = {
      key,
      size: bytes.length,
      lastModified: new Date(),
      contentType: opts.contentType ?? 'application/octet-stream',
      etag: createHash('md5').update(bytes).digest('hex'),
    }
    this.#objects.set(key, { body: bytes, info })
    return { ...info }
  }

  async get(key: string): Promise<Readable> {
    const o = this.#objects.get(key)
    if (!o) throw notFound(key)
    return Readable.from([o.body])
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const o = this.#objects.get(key)
    return o ? { ...o.info } : undefined
  }

  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    let after: string | undefined
    for (;;) {
      const page = [...this.#objects.keys()]
        .filter((k) => k.startsWith(prefix) && (after === undefined || k > after))
        .sort()
        .slice(0, this.#pageSize)
      for (const k of page) {
        const o = this.#objects.get(k)
        if (o) yield { key: k, size: o.info.size, lastModified: o.info.lastModified, etag: o.info.etag }
      }
      if (page.length < this.#pageSize) return
      after = page[page.length - 1]
    }
  }

  async delete(key: string): Promise<void> {
    this.#objects.delete(key)
  }

  /** A put here is all in memory at once: no upload is ever left unfinished. */
  async abortUploads(): Promise<number> {
    return 0
  }
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string))
  return Buffer.concat(chunks)
}

export function notFound(key: string, cause?: unknown): WharfError {
  return new WharfError('WHARF_NOT_FOUND', `no object ${key}`, { cause, details: { key } })
}
