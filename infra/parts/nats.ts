import { mkdirSync } from 'node:fs'
import { request } from 'undici'
import type { Part } from '../part.js'
import { livePid, portOpen, startDaemon, stopPidfile, tail, waitUntil } from '../proc.js'

async function varz(port: number): Promise<{ version: string; jetstream?: unknown } | undefined> {
  const res = await request(`http://127.0.0.1:${port}/varz`, { headersTimeout: 1000, bodyTimeout: 1000 })
  if (res.statusCode !== 200) {
    await res.body.dump()
    return undefined
  }
  return (await res.body.json()) as { version: string }
}

async function healthy(port: number): Promise<boolean> {
  const res = await request(`http://127.0.0.1:${port}/healthz?js-enabled-only=true`, { headersTimeout: 1000, bodyTimeout: 1000 })
  await res.body.dump()
  return res.statusCode === 200
}

/** `nats-server -js` with file storage under $WHARF_HOME/nats, on 127.0.0.1 only. */
export const nats: Part = {
  name: 'nats',
  async status({ cfg, paths }) {
    const address = `nats://127.0.0.1:${cfg.ports.nats}`
    const pid = livePid(paths.nats.pid)
    if (!pid) return { up: false, address }
    try {
      const v = await varz(cfg.ports.natsMonitor)
      const up = await healthy(cfg.ports.natsMonitor)
      return { up, address, pid, version: v?.version, detail: up ? 'JetStream enabled' : 'JetStream not ready' }
    } catch (err) {
      return { up: false, address, pid, detail: (err as Error).message }
    }
  },
  async start(ctx) {
    const { cfg, paths } = ctx
    if (livePid(paths.nats.pid)) {
      await waitUntil('NATS', () => healthy(cfg.ports.natsMonitor), 15_000)
      return 'running'
    }
    for (const p of [cfg.ports.nats, cfg.ports.natsMonitor]) {
      if (await portOpen(p)) throw new Error(`NATS: port ${p} is already taken by another process (set WHARF_NATS_PORT / WHARF_NATS_MONITOR_PORT)`)
    }
    mkdirSync(paths.nats.data, { recursive: true })
    startDaemon({
      cmd: 'nats-server',
      args: ['-a', '127.0.0.1', '-p', String(cfg.ports.nats), '-m', String(cfg.ports.natsMonitor), '-js', '-sd', paths.nats.data, '-n', 'wharf'],
      logFile: paths.nats.log,
      pidfile: paths.nats.pid,
    })
    await waitUntil('NATS', () => healthy(cfg.ports.natsMonitor), 30_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${tail(paths.nats.log)}`)
    })
    return 'started'
  },
  async stop({ paths }) {
    return (await stopPidfile(paths.nats.pid, { timeoutMs: 20_000 })) ? 'stopped' : 'not running'
  },
}
