/**
 * The writer of the "killed between the events of one append" test (events/atomic.int.test.ts): appends
 * one commit of three events, with the ids it is given, to `app.<app>` of namespace `ns` through NATS
 * at `url` (the test's proxy, which cuts the publish and SIGKILLs this process), then prints `appended`.
 *
 * Usage: append-child.ts <nats url> <namespace> <app> <id> <id> <id>
 */
import { EventSubjects, streamId } from '../index.js'
import { JetStreamEventStore } from '../jetstream.js'
import { thingCatalogue } from './things.js'

const [url, ns, app, ...ids] = process.argv.slice(2)
if (!url || !ns || !app || ids.length !== 3) throw new Error('usage: append-child.ts <nats url> <namespace> <app> <id> <id> <id>')
const store = await JetStreamEventStore.connect({ servers: url, catalogue: thingCatalogue(), subjects: new EventSubjects(ns), name: 'wharf-append-child' })
await store.append(
  streamId('app', app),
  [
    { id: ids[0], type: 'ThingAdded', data: { n: 1 } },
    { id: ids[1], type: 'ThingAdded', data: { n: 2 } },
    { id: ids[2], type: 'ThingAdded', data: { n: 3 } },
  ],
  { actor: 'user:alice', expectedVersion: 0 },
)
process.stdout.write('appended\n')
await store.close()
