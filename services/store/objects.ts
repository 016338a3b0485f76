/** What backups and exports share in the store: errors, checksums, manifests. */
import { createHash } from 'node:crypto'
import { Transform } from 'node:stream'
import { isWharfError, WharfError } from '../../core/errors.js'
import type { Logger } from '../../core/log.js'
import type { ObjectStore } from '../../core/objectstore/index.js'

/** A failure of the store itself (the gateway down, a refused request), named as such. */
export function storeError(endpoint: string, doing: string, err: unknown): WharfError {
  if (isWharfError(err)) return err
  const e = err as Error & { $metadata?: { httpStatusCode?: number } }
  const status = e.$metadata?.httpStatusCode
  return new WharfError(
    'WHARF_UNAVAILABLE',
    `the store at ${endpoint} failed while ${doing}: ${status ? `${status} ` : ''}${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message || 'no answer'}`,
    { cause: err },
  )
}

/** SHA-256 and size of what passes through. */
export class Digest extends Transform {
  readonly #hash = createHash('sha256')
  bytes = 0
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err: null, chunk: Buffer) => void): void {
    this.#hash.update(chunk)
    this.bytes += chunk.length
    cb(null, chunk)
  }
  hex(): string {
    return this.#hash.digest('hex')
  }
}

/** The object's bytes as text. */
export async function readText(objects: ObjectStore, key: string): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of await objects.get(key)) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** By creation time (ms), then id: ids of one second do not sort by time. */
export function newestFirst(a: { createdAt: string; id: string }, b: { createdAt: string; id: string }): number {
  return a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1
}

/**
 * Every manifest (`<namespace>/<id>.json`) in a bucket, parsed by `parse`, newest first. One that fails
 * its checks is left out and logged: it is not a complete backup or export.
 */
export async function listManifests<M extends { createdAt: string; id: string }>(
  deps: { objects: ObjectStore; endpoint: string; log: Logger },
  namespace: string,
  what: 'backups' | 'exports',
  parse: (id: string, text: string) => M,
): Promise<M[]> {
  const out: M[] = []
  try {
    for await (const o of deps.objects.list(`${namespace}/`)) {
      const id = o.key.slice(namespace.length + 1, -'.json'.length)
      if (!o.key.endsWith('.json') || !/^[0-9]{8}-/.test(id)) continue
      try {
        out.push(parse(id, await readText(deps.objects, o.key)))
      } catch (err) {
        if (!isWharfError(err)) throw err
        deps.log.warn({ err, key: o.key }, `a manifest among the ${what} fails its checks; left out`)
      }
    }
  } catch (err) {
    throw storeError(deps.endpoint, `listing ${what}`, err)
  }
  return out.sort(newestFirst)
}
