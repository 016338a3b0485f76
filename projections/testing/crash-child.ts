/**
 * The crash test's child process: runs a Projector over the counting projection and SIGKILLs itself
 * from a hook, mid-stream. argv: <nats url> <pg url> <namespace> <projection> <beforeCommit|afterCommit> <kill at seq>
 */
import pg from 'pg'
import { createLogger } from '../../core/log.js'
import { wharfCatalogue } from '../../domain/index.js'
import { EventSubjects } from '../../events/index.js'
import { JetStreamEventStore } from '../../events/jetstream.js'
import { Projector, type BatchInfo } from '../projector.js'
import { countingProjection } from './counting.js'

const [natsUrl, pgUrl, namespace, name, hook, killAtArg] = process.argv.slice(2)
if (!natsUrl || !pgUrl || !namespace || !name || (hook !== 'beforeCommit' && hook !== 'afterCommit') || !killAtArg) {
  throw new Error('usage: crash-child <nats> <pg> <namespace> <projection> <beforeCommit|afterCommit> <killAtSeq>')
}
const killAt = Number(killAtArg)
const store = await JetStreamEventStore.connect({ servers: natsUrl, catalogue: wharfCatalogue(), subjects: new EventSubjects(namespace) })
const pool = new pg.Pool({ connectionString: pgUrl })
const die = (info: BatchInfo): void => {
  if (info.phase === 'live' && info.lastSeq >= killAt) process.kill(process.pid, 'SIGKILL')
}
const projector = new Projector({
  store,
  pool,
  projections: [countingProjection(name)],
  log: createLogger({ level: 'warn' }),
  batch: { maxBatch: 25 },
  hooks: { [hook]: die },
})
await projector.start()
// Only reached when the hook never fired: the parent fails the test on a clean exit.
setTimeout(() => process.exit(0), 15_000)
