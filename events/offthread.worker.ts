/**
 * The reader thread of {@link readOffThread} (events/offthread.ts): connects to NATS on its own, reads
 * the log with `readExistingRaw` over a bare connection of its own (or `readExistingBatches` through
 * nats.js when that cannot be made: a server that wants TLS) and sends it in packed chunks, at most
 * `window` ahead of what the caller took ("more" gives one back; "stop" ends the read early).
 */
import { parentPort, workerData } from 'node:worker_threads'
import { jetstream } from '@nats-io/jetstream'
import { isWharfError } from '../core/errors.js'
import { connectJetStream, ephemeralConsumer, readExistingBatches } from './connection.js'
import { packMessages, type ReaderData, type ReaderMessage } from './offthread.js'
import { RawNatsConnection, readExistingRaw } from './rawread.js'
import { natsServers } from './servers.js'

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

/**
 * A bare connection to the server `nc` is connected to, with the platform's user and password;
 * undefined when there is none to be had (TLS, a server that refuses it): the read goes through nats.js.
 */
async function openRaw(current: string): Promise<RawNatsConnection | undefined> {
  const { servers, user, pass } = natsServers(o.servers)
  if (servers.some((s) => /^tls:/i.test(s))) return undefined
  const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(current)
  if (!m) return undefined
  try {
    return await RawNatsConnection.connect({ host: m[1]!, port: Number(m[2]), user, pass, name: o.name })
  } catch (err) {
    log.warn({ err, server: current }, 'a bare connection for the read could not be made; reading through nats.js')
    return undefined
  }
}

/** Waits for a credit (or the stop), then sends `messages` as one packed chunk; false when stopped. */
async function sendChunk(messages: readonly { seq: number; data: Uint8Array }[]): Promise<boolean> {
  while (credits === 0 && !stopped) await new Promise<void>((r) => (waiting = r))
  if (stopped) return false
  credits--
  const p = packMessages(messages)
  send({ kind: 'chunk', ...p }, [p.seqs.buffer as ArrayBuffer, p.ends.buffer as ArrayBuffer, p.payload.buffer as ArrayBuffer])
  return true
}

/** Reads and sends until the end, a stop or a failure (sent as an error). */
async function read(): Promise<void> {
  const { nc, jsm } = await connectJetStream({ servers: o.servers, name: o.name })
  const raw = await openRaw(nc.getServer())
  try {
    const config = ephemeralConsumer(undefined, { fromSeq: o.fromSeq })
    const reads = raw
      ? readExistingRaw(jsm, raw, o.stream, config, { batch: o.batch, log })
      : readExistingBatches(jetstream(nc), jsm, o.stream, config, { batch: o.batch, log })
    for await (const messages of reads) if (!(await sendChunk(messages))) break
    if (!stopped) send({ kind: 'end' })
  } finally {
    raw?.close()
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
