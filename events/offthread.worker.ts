/**
 * The reader thread of {@link readOffThread} (events/offthread.ts): connects to NATS on its own, reads
 * the log with `readExistingBatches` and sends it in packed chunks, at most `window` ahead of what the
 * caller took ("more" gives one back; "stop" ends the read early).
 */
import { parentPort, workerData } from 'node:worker_threads'
import { jetstream } from '@nats-io/jetstream'
import { isWharfError } from '../core/errors.js'
import { connectJetStream, ephemeralConsumer, readExistingBatches } from './connection.js'
import { packMessages, type ReaderData, type ReaderMessage } from './offthread.js'

const port = parentPort!
const o = workerData as ReaderData
let credits = o.window
let stopped = false
let waiting: (() => void) | undefined
port.on('message', (m: unknown) => {
  if (m === 'more') credits++
  else if (m === 'stop') stopped = true
  const w = waiting
  waiting = undefined
  w?.()
})
const send = (m: ReaderMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer)
// Warnings of the read (a lost delivery read again) go to the caller's log.
const log = {
  // Errors as their message: an error object may hold what cannot cross between threads.
  warn: (obj: object, msg: string) =>
    send({ kind: 'log', obj: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, v instanceof Error ? v.message : v])), msg }),
  debug: () => {},
}

/** Reads and sends until the end, a stop or a failure (sent as an error). */
async function read(): Promise<void> {
  const { nc, jsm } = await connectJetStream({ servers: o.servers, name: o.name })
  try {
    const js = jetstream(nc)
    for await (const messages of readExistingBatches(js, jsm, o.stream, ephemeralConsumer(undefined, { fromSeq: o.fromSeq }), { batch: o.batch, log })) {
      while (credits === 0 && !stopped) await new Promise<void>((r) => (waiting = r))
      if (stopped) break
      credits--
      const p = packMessages(messages)
      send({ kind: 'chunk', ...p }, [p.seqs.buffer as ArrayBuffer, p.ends.buffer as ArrayBuffer, p.payload.buffer as ArrayBuffer])
    }
    if (!stopped) send({ kind: 'end' })
  } finally {
    await nc.close().catch(() => {})
  }
}

try {
  await read()
} catch (err) {
  send({ kind: 'error', code: isWharfError(err) ? err.code : null, message: (err as Error).message })
} finally {
  // The listener for "more" and "stop" would keep this thread alive: what was posted is delivered all the same.
  port.unref()
}
