/**
 * The webhooks service's core: one {@link HookWorker} per hook, kept in line with the hooks' own events
 * by a small durable consumer (`webhooks-control`): `HookAdded` starts a worker, `HookRemoved` stops it
 * and deletes its durable consumer, `HookDisabled` stops its deliveries, `HookRedeliveryRequested`
 * sends one past delivery again, beside the hook's queue.
 */
import type pg from 'pg'
import type { Logger } from '../../core/log.js'
import type { OutboundPolicy } from '../../core/outbound.js'
import { dataOf } from '../../domain/index.js'
import { startConsumer, type Consumer } from '../../events/consumer.js'
import type { EventStore, RecordedEvent } from '../../events/index.js'
import { hookTargets, waitFor, type HookTarget } from '../../projections/index.js'
import { DEFAULT_WEBHOOK_OPTIONS, HookWorker, hookDurable, type Tail, type WebhookOptions } from './worker.js'

/** The control consumer's durable name. */
export const CONTROL_DURABLE = 'webhooks-control'
/** The shared tail's durable name: made anew at the end of the log at each start (the hooks keep their own positions). */
export const TAIL_DURABLE = 'webhooks-tail'
/** Events the shared tail keeps after handing them out, for hooks that catch up to within them. */
const TAIL_RECENT = 1024
/** Redeliveries in flight at once (beyond, the control consumer waits). */
const MAX_REDELIVERIES = 16

export interface WebhooksDeps {
  store: EventStore
  pool: pg.Pool
  log: Logger
  policy: OutboundPolicy
  opts?: Partial<WebhookOptions>
}

export class Webhooks {
  readonly #deps: WebhooksDeps & { opts: WebhookOptions; tail: Tail }
  readonly #workers = new Map<string, HookWorker>()
  readonly #redeliveries = new Set<Promise<void>>()
  #control: Consumer | undefined
  #tail: Consumer | undefined
  /** The newest event the tail handed to the live hooks, and the most recent ones (bounded). */
  #tailSeq = 0
  /** The first seq the tail reads: it hands out every event from there. */
  #tailStart = 1
  #recent: RecordedEvent[] = []

  constructor(deps: WebhooksDeps) {
    this.#deps = { ...deps, opts: { ...DEFAULT_WEBHOOK_OPTIONS, ...deps.opts }, tail: { since: (e) => this.#since(e) } }
  }

  /**
   * Starts the shared tail (one read of the log that hands each event to the live hooks), a worker per
   * hook of the read model, then follows the hooks' own events.
   */
  async start(): Promise<void> {
    const { store, pool, log } = this.#deps
    await store.deleteSubscription(TAIL_DURABLE)
    this.#tailSeq = await store.lastSeq()
    this.#tailStart = this.#tailSeq + 1
    this.#tail = await startConsumer({
      store,
      durableName: TAIL_DURABLE,
      from: this.#tailSeq + 1,
      handle: async (e) => {
        this.#tailSeq = e.seq
        this.#recent.push(e)
        if (this.#recent.length > TAIL_RECENT) this.#recent.shift()
        for (const w of this.#workers.values()) w.offer(e)
      },
      log,
      name: 'webhooks tail',
    })
    const end = await store.lastSeq()
    this.#control = await startConsumer({
      store,
      durableName: CONTROL_DURABLE,
      from: end + 1,
      types: ['HookAdded', 'HookRemoved', 'HookDisabled', 'HookRedeliveryRequested'],
      catchUp: async () => {
        // The hooks read model up to where the log was when the subscription was made: no hook added meanwhile is missed.
        await waitFor(pool, end, { projections: ['hooks'], timeoutMs: 60_000 })
        for (const t of await hookTargets(pool)) this.#add(t)
      },
      handle: (e) => this.#handle(e),
      log,
      name: 'webhooks',
    })
  }

  /**
   * The tail's recent events after `e`, by id (the events of one commit share a seq): those it handed
   * out after `e`; [] when it has not come to `e` yet and will (it started at or before `e`'s seq);
   * undefined when it passed `e` and no longer holds what came after.
   */
  #since(e: RecordedEvent): RecordedEvent[] | undefined {
    for (let i = this.#recent.length - 1; i >= 0; i--) if (this.#recent[i]!.id === e.id) return this.#recent.slice(i + 1)
    const last = this.#recent.at(-1)
    if ((!last || last.seq < e.seq) && e.seq >= this.#tailStart) return []
    return undefined
  }

  /** How many hooks have a worker. */
  get size(): number {
    return this.#workers.size
  }

  async stop(): Promise<void> {
    await this.#control?.stop()
    await this.#tail?.stop()
    await Promise.allSettled(this.#redeliveries)
    await Promise.all([...this.#workers.values()].map((w) => w.stop()))
    this.#workers.clear()
  }

  #add(t: HookTarget): void {
    if (this.#workers.has(t.id)) return
    const w = new HookWorker(t, this.#deps)
    this.#workers.set(t.id, w)
    w.start()
  }

  async #handle(e: RecordedEvent): Promise<void> {
    const added = dataOf(e, 'HookAdded')
    if (added) {
      const { scope, ...rest } = added
      return this.#add({ ...rest, app: scope, addedSeq: e.seq, disabled: false })
    }
    const removed = dataOf(e, 'HookRemoved')
    if (removed) {
      const w = this.#workers.get(removed.id)
      this.#workers.delete(removed.id)
      await w?.stop()
      await this.#deps.store.deleteSubscription(hookDurable(removed.id))
      return
    }
    const disabled = dataOf(e, 'HookDisabled')
    if (disabled) {
      const w = this.#workers.get(disabled.id)
      if (!w) return
      await w.stop()
      // Kept, stopped, for redeliveries.
      const again = new HookWorker({ ...w.target, disabled: true }, this.#deps)
      this.#workers.set(disabled.id, again)
      return
    }
    const redo = dataOf(e, 'HookRedeliveryRequested')
    if (redo) {
      const w = this.#workers.get(redo.id)
      if (!w) return
      while (this.#redeliveries.size >= MAX_REDELIVERIES) await Promise.race(this.#redeliveries)
      const p = w
        .redeliver(redo.delivery, redo.seq, redo.request)
        .catch((err) => this.#deps.log.error({ err, hook: redo.id }, 'webhooks: a redelivery failed'))
        .finally(() => this.#redeliveries.delete(p))
      this.#redeliveries.add(p)
    }
  }
}
