import { Worker } from 'node:worker_threads'
import { WharfError, type ErrorCode } from '../core/errors.js'
import type { Logger } from '../core/log.js'

/**
 * Reading a large part of the log on a thread of its own (a replay reads a million events): the NATS
 * protocol, the JetStream message objects and their garbage stay on the reader thread, and the reading
 * goes on while the caller's thread decodes and applies what was read before. Messages cross as
 * {@link Packed} chunks whose buffers are transferred, not copied; the caller decodes the JSON.
 */

/** Messages of the log packed for the trip between threads: message i is `payload[ends[i-1] .. ends[i]]`, at stream seq `seqs[i]`. */
export interface Packed {
  seqs: Float64Array
  ends: Uint32Array
  payload: Uint8Array
}

/** Packs `messages` into three buffers of their own (see {@link Packed}). */
export function packMessages(messages: readonly { seq: number; data: Uint8Array }[]): Packed {
  const n = messages.length
  let bytes = 0
  for (let i = 0; i < n; i++) bytes += messages[i]!.data.length
  const seqs = new Float64Array(n)
  const ends = new Uint32Array(n)
  const payload = new Uint8Array(bytes)
  let at = 0
  for (let i = 0; i < n; i++) {
    const m = messages[i]!
    payload.set(m.data, at)
    at += m.data.length
    seqs[i] = m.seq
    ends[i] = at
  }
  return { seqs, ends, payload }
}

/** Calls `fn` with each message of `p`, in order (`data` is a view into `p.payload`). */
export function forEachPacked(p: Packed, fn: (data: Uint8Array, seq: number) => void): void {
  let start = 0
  for (let i = 0; i < p.seqs.length; i++) {
    const end = p.ends[i]!
    fn(p.payload.subarray(start, end), p.seqs[i]!)
    start = end
  }
}

/** What the reader thread is given. */
export interface ReaderData {
  servers: string | string[]
  name: string
  stream: string
  fromSeq: number
  batch: number
  /** How many chunks it may send ahead of the reader (the bound of what is held in memory). */
  window: number
}

/** What the reader thread sends. */
export type ReaderMessage =
  | ({ kind: 'chunk' } & Packed)
  | { kind: 'end' }
  | { kind: 'error'; code: ErrorCode | null; message: string }
  | { kind: 'log'; obj: Record<string, unknown>; msg: string }

/** Chunks (of up to 1000 messages each) the reader thread may be ahead: about 10 MB at most with messages of ~600 bytes. */
const WINDOW = 16
/** How long a reader thread told to stop may take to delete its consumer and close, ms, before it is terminated. */
const STOP_GRACE_MS = 2_000

const WORKER = new URL(import.meta.url.endsWith('.ts') ? './offthread.worker.ts' : './offthread.worker.js', import.meta.url)

/**
 * The messages of `stream` from `fromSeq` that exist when the read starts, read by a thread of its own
 * (the same read as `readExistingBatches`: gaps noticed and read again, the consumer deleted at the
 * end), in {@link Packed} chunks of whole messages. At most {@link WINDOW} chunks are held ahead of
 * the caller. Leaving the loop early stops the thread.
 */
export async function* readOffThread(o: Omit<ReaderData, 'window'> & { log?: Logger | undefined }): AsyncGenerator<Packed> {
  const data: ReaderData = { servers: o.servers, name: o.name, stream: o.stream, fromSeq: o.fromSeq, batch: o.batch, window: WINDOW }
  const worker = new Worker(WORKER, { workerData: data })
  const queue: ReaderMessage[] = []
  let failure: Error | undefined
  let exited = false
  let wake: (() => void) | undefined
  const notify = () => {
    const w = wake
    wake = undefined
    w?.()
  }
  worker.on('message', (m: ReaderMessage) => {
    if (m.kind === 'log') o.log?.warn(m.obj, m.msg)
    else queue.push(m)
    notify()
  })
  worker.on('error', (err: unknown) => {
    failure = err instanceof Error ? err : new Error(String(err))
    notify()
  })
  worker.on('exit', () => {
    exited = true
    notify()
  })
  try {
    for (;;) {
      while (queue.length === 0 && failure === undefined && !exited) await new Promise<void>((r) => (wake = r))
      const m = queue.shift()
      if (m === undefined) {
        throw new WharfError('WHARF_UNAVAILABLE', `reading ${o.stream} stopped: ${failure?.message ?? 'its thread ended'}`, { cause: failure })
      }
      if (m.kind === 'end') return
      if (m.kind === 'error') throw new WharfError(m.code ?? 'WHARF_UNAVAILABLE', m.message)
      if (m.kind !== 'chunk') continue
      yield { seqs: m.seqs, ends: m.ends, payload: m.payload }
      // Taken: the thread may send one more.
      worker.postMessage('more')
    }
  } finally {
    if (!exited) {
      worker.postMessage('stop')
      const ended = new Promise<void>((r) => worker.once('exit', () => r()))
      const timer = setTimeout(() => void worker.terminate(), STOP_GRACE_MS)
      await ended
      clearTimeout(timer)
    }
  }
}
