import { createCipheriv, createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import type { Test } from 'tap'
import { isWharfError } from '../errors.js'
import type { ObjectInfo, ObjectStore } from './objectstore.js'

/** How an adapter's test file gives the contract its stores. Each registers its own cleanup on `t`. */
export interface ObjectStoreFactory {
  /** A store over an empty bucket (or key space); `pageSize` forces small `list` pages. */
  create(t: Test, opts?: { pageSize?: number }): Promise<ObjectStore>
}

/** `size` bytes of deterministic noise (an AES-CTR keystream of `seed`), `chunk` bytes at a time, as a stream with no known length. */
export function noise(size: number, seed = 'wharf', chunk = 256 * 1024): Readable {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16))
  const zeros = Buffer.alloc(chunk)
  let sent = 0
  return Readable.from(
    (function* () {
      while (sent < size) {
        const n = Math.min(chunk, size - sent)
        sent += n
        yield cipher.update(zeros.subarray(0, n))
      }
    })(),
  )
}

/** A stream that yields `good` bytes and then fails, as a body whose source breaks mid-upload. */
export function failingAfter(good: number): Readable {
  const src = noise(good, 'broken')
  return Readable.from(
    (async function* () {
      for await (const chunk of src) yield chunk as Buffer
      throw new Error('the source broke mid-upload')
    })(),
  )
}

export async function sha256Of(stream: Readable): Promise<{ sha: string; size: number }> {
  const h = createHash('sha256')
  let size = 0
  for await (const chunk of stream) {
    h.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return { sha: h.digest('hex'), size }
}

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

async function keys(it: AsyncIterable<ObjectInfo>): Promise<string[]> {
  const out: string[] = []
  for await (const o of it) out.push(o.key)
  return out
}

const MiB = 1024 * 1024

/** The `ObjectStore` contract: every adapter passes these. */
export function objectStoreContract(t: Test, name: string, factory: ObjectStoreFactory): Promise<void> {
  return t
    .test(`ObjectStore contract: ${name}`, async (t) => {
      t.test('put then get, head, list and delete', async (t) => {
        const store = await factory.create(t)
        const put = await store.put('a/hello.txt', Buffer.from('hello, store'), { contentType: 'text/plain' })
        t.match(put, { key: 'a/hello.txt', size: 12 })
        t.equal(await text(await store.get('a/hello.txt')), 'hello, store')
        const head = await store.head('a/hello.txt')
        t.match(head, { key: 'a/hello.txt', size: 12, contentType: 'text/plain' })
        t.ok(head?.lastModified instanceof Date && Math.abs(head.lastModified.getTime() - Date.now()) < 60_000, 'lastModified is now')
        await store.put('a/two.bin', Buffer.alloc(3, 1))
        await store.put('b/other', Buffer.from('x'))
        const listed: ObjectInfo[] = []
        for await (const o of store.list('a/')) listed.push(o)
        t.same(
          listed.map((o) => [o.key, o.size]),
          [
            ['a/hello.txt', 12],
            ['a/two.bin', 3],
          ],
          'list by prefix, in key order, with sizes',
        )
        t.same(await keys(store.list()), ['a/hello.txt', 'a/two.bin', 'b/other'], 'no prefix lists everything')
        await store.delete('a/hello.txt')
        t.equal(await store.head('a/hello.txt'), undefined, 'deleted')
        t.same(await keys(store.list('a/')), ['a/two.bin'])
        await store.delete('a/hello.txt')
        t.pass('deleting a missing key is not an error')
      })

      t.test('a put replaces the object under the key', async (t) => {
        const store = await factory.create(t)
        await store.put('k', Buffer.from('first'))
        await store.put('k', Buffer.from('second, longer'))
        t.equal(await text(await store.get('k')), 'second, longer')
        t.equal((await store.head('k'))?.size, 14)
      })

      t.test('a missing key: get fails with WHARF_NOT_FOUND, head answers undefined', async (t) => {
        const store = await factory.create(t)
        const err = await store.get('nope/never').then(
          () => undefined,
          (e: unknown) => e,
        )
        t.ok(isWharfError(err), 'a WharfError')
        t.match(err, { code: 'WHARF_NOT_FOUND', message: /nope\/never/ })
        t.equal(await store.head('nope/never'), undefined)
        t.same(await keys(store.list('nope/')), [])
      })

      t.test('an empty body is an object of size 0', async (t) => {
        const store = await factory.create(t)
        await store.put('empty', Buffer.alloc(0))
        t.equal((await store.head('empty'))?.size, 0)
        t.equal(await text(await store.get('empty')), '')
      })

      t.test('a 20 MiB stream goes up in parts and reads back byte-identical', async (t) => {
        const store = await factory.create(t)
        const want = await sha256Of(noise(20 * MiB))
        const put = await store.put('big/20mib', noise(20 * MiB), { contentType: 'application/x-test' })
        t.equal(put.size, 20 * MiB)
        t.same(await sha256Of(await store.get('big/20mib')), want, 'same bytes back')
        t.equal((await store.head('big/20mib'))?.contentType, 'application/x-test')
      })

      t.test('a body that fails mid-upload leaves no object behind', async (t) => {
        const store = await factory.create(t)
        await t.rejects(store.put('broken/obj', failingAfter(12 * MiB)), /broke mid-upload/)
        t.equal(await store.head('broken/obj'), undefined, 'no object under the key')
        t.same(await keys(store.list('broken/')), [], 'nothing listed')
        await store.put('broken/obj', Buffer.from('next one works'))
        t.equal(await text(await store.get('broken/obj')), 'next one works', 'the next put works')
      })

      t.test('list pages through more keys than a page holds', async (t) => {
        const store = await factory.create(t, { pageSize: 7 })
        const want = Array.from({ length: 30 }, (_, i) => `p/${String(i).padStart(3, '0')}`)
        await Promise.all(want.map((k) => store.put(k, Buffer.from(k))))
        await store.put('q/outside', Buffer.from('not listed'))
        t.same(await keys(store.list('p/')), want, 'every key once, in order, across 5 pages')
        t.same(await keys(store.list('p/02')), want.slice(20, 30))
      })
    })
    .then(() => undefined)
}
