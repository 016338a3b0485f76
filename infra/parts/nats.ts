import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { request } from 'undici'
import type { WharfConfig } from '../../core/config.js'
import type { Paths } from '../../core/paths.js'
import { readPid } from '../proc.js'
import { generatedSecret } from '../secrets.js'
import { answers, daemonPart } from '../daemon.js'

/** The one NATS user of the platform's services (clients authenticate; the host's other users cannot connect). */
export const NATS_USER = 'wharf'

/** The password `make up` generated once under $WHARF_HOME/secrets (mode 600). */
const natsPassword = (paths: Paths): string => generatedSecret(paths, paths.nats.password)

/**
 * The URL the services and tools use: with the platform's user and password when infra runs this
 * NATS (the default `nats://127.0.0.1:<port>`); an operator's own `WHARF_NATS_URL` as it is.
 */
export function natsClientUrl(cfg: WharfConfig, paths: Paths): string {
  if (cfg.natsUrl !== `nats://127.0.0.1:${cfg.ports.nats}`) return cfg.natsUrl
  return `nats://${NATS_USER}:${encodeURIComponent(natsPassword(paths))}@127.0.0.1:${cfg.ports.nats}`
}

/** The server's configuration file (mode 600: it holds the password); answers whether it changed. */
function writeConf(paths: Paths): boolean {
  // base64url: nothing to quote in NATS's config syntax.
  const body = `# Written by \`make up\`.\nauthorization {\n  user: ${NATS_USER}\n  password: "${natsPassword(paths)}"\n}\n`
  const old = existsSync(paths.nats.conf) ? readFileSync(paths.nats.conf, 'utf8') : undefined
  if (old === body) return false
  writeFileSync(paths.nats.conf, body, { mode: 0o600 })
  return true
}

/** `nats-server -js` with file storage under $WHARF_HOME/nats, on 127.0.0.1 only, clients with the platform's password. */
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
    return { version: varz.version, detail: 'JetStream enabled, password required' }
  },
  prepare({ cfg, paths }) {
    mkdirSync(paths.nats.data, { recursive: true })
    writeConf(paths)
    return {
      cmd: 'nats-server',
      // The password is in the config file, not on the command line (which every user of the host can read).
      args: [
        '-c',
        paths.nats.conf,
        '-a',
        '127.0.0.1',
        '-p',
        String(cfg.ports.nats),
        '-m',
        String(cfg.ports.natsMonitor),
        '-js',
        '-sd',
        paths.nats.data,
        '-n',
        'wharf',
      ],
      logFile: paths.nats.log,
      pidfile: paths.nats.pid,
    }
  },
  /** A NATS started before passwords (or with another one): the file written anew and reloaded (SIGHUP), no restart. */
  async refresh({ paths }) {
    const pid = readPid(paths.nats.pid)
    // A server started without the file (before passwords) cannot reload it: its next start reads it.
    if (!pid || !readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(paths.nats.conf)) return false
    if (!writeConf(paths)) return false
    process.kill(pid, 'SIGHUP')
    return true
  },
})
