/**
 * Lost hosts: when Swarm marks a node down (its engine stopped answering heartbeats), the publisher
 * of that host cannot say that its containers are gone. The scheduler says it for them: every
 * container the read model has up (or stopping) at a down node's address is announced crashed on
 * its app's runtime stream, so routers stop sending to it. Swarm itself starts replacements on the
 * nodes left (the replicated services' tasks are rescheduled).
 */
import type pg from 'pg'
import type { ContainerEngine, NodeInfo } from '../../core/engine/engine.js'
import type { Logger } from '../../core/log.js'
import { runCommand } from '../../domain/command.js'
import { runtimeDecider } from '../../domain/runtime/decider.js'
import { streamId, type EventStore } from '../../events/index.js'
import { hostContainers } from '../../projections/index.js'

/** The exit code a container lost with its host is announced with: none was seen. */
export const LOST_EXIT_CODE = -1

export interface LostHostsDeps {
  docker: ContainerEngine
  store: EventStore
  pool: pg.Pool
  log: Logger
  /** The containers up or stopping at `host`, default the containers read model's. */
  containersAt?: (host: string) => Promise<{ container: string; app: string; type: string }[]>
}

/** The nodes whose containers are lost: down, with an address. */
export function lostNodes(nodes: readonly NodeInfo[]): NodeInfo[] {
  return nodes.filter((n) => n.state === 'down' && n.address !== '' && n.address !== '0.0.0.0')
}

/**
 * One pass: announces crashed every container at the address of a node Swarm has down. Answers how
 * many containers were marked (0 when nothing was lost or it was said already).
 */
export async function markLostHosts(deps: LostHostsDeps): Promise<number> {
  const containersAt = deps.containersAt ?? ((host: string) => hostContainers(deps.pool, host))
  let marked = 0
  for (const node of lostNodes(await deps.docker.listNodes())) {
    const reason = `its host ${node.address} (${node.hostname || node.id.slice(0, 12)}) is down`.slice(0, 1024)
    for (const c of await containersAt(node.address)) {
      const { events } = await runCommand(
        { store: deps.store },
        {
          stream: streamId('runtime', c.app),
          decider: runtimeDecider,
          command: {
            type: 'Announce',
            announcement: { kind: 'crashed', container: c.container, identity: { app: c.app, type: c.type }, exitCode: LOST_EXIT_CODE, reason },
          },
          ctx: { actor: 'system:scheduler', correlationId: c.container },
          waitFor: [],
        },
      )
      if (events.length) {
        marked++
        deps.log.warn({ app: c.app, type: c.type, container: c.container.slice(0, 12), host: node.address }, 'scheduler: a container is lost with its host')
      }
    }
  }
  return marked
}

/** Runs {@link markLostHosts} every `intervalMs` until stopped; a failed pass is logged and the next one tries again. */
export function watchLostHosts(deps: LostHostsDeps, intervalMs: number): { stop(): Promise<void> } {
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  const tick = () => {
    running = markLostHosts(deps)
      .then(() => undefined)
      .catch((err) => deps.log.warn({ err }, 'scheduler: cannot check for lost hosts'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs)
      })
  }
  timer = setTimeout(tick, intervalMs)
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running
    },
  }
}
