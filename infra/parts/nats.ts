import { mkdirSync } from 'node:fs'
import { request } from 'undici'
import { answers, daemonPart } from '../daemon.js'

/** `nats-server -js` with file storage under $WHARF_HOME/nats, on 127.0.0.1 only. */
export const nats = daemonPart({
  name: 'nats',
  address: ({ cfg }) => `nats://127.0.0.1:${cfg.ports.nats}`,
  pidfile: ({ paths }) => paths.nats.pid,
  log: ({ paths }) => paths.nats.log,
  ports: ({ cfg }) => [
    { port: cfg.ports.nats, env: 'WHARF_NATS_PORT' },
    { port: cfg.ports.natsMonitor, env: 'WHARF_NATS_MONITOR_PORT' },
  ],
  healthy: ({ cfg }) => answers(`http://127.0.0.1:${cfg.ports.natsMonitor}/healthz?js-enabled-only=true`),
  async describe({ cfg }) {
    const res = await request(`http://127.0.0.1:${cfg.ports.natsMonitor}/varz`, { headersTimeout: 1000, bodyTimeout: 1000 })
    const varz = (await res.body.json()) as { version?: string }
    return { version: varz.version, detail: 'JetStream enabled' }
  },
  prepare({ cfg, paths }) {
    mkdirSync(paths.nats.data, { recursive: true })
    return {
      cmd: 'nats-server',
      args: ['-a', '127.0.0.1', '-p', String(cfg.ports.nats), '-m', String(cfg.ports.natsMonitor), '-js', '-sd', paths.nats.data, '-n', 'wharf'],
      logFile: paths.nats.log,
      pidfile: paths.nats.pid,
    }
  },
})
