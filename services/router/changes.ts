/**
 * Route table -> what nginx's shared dict should hold, and the change set between two of those.
 * Pure. Every name that reaches nginx is checked again here against a strict pattern and left out
 * (reported in `dropped`) when it does not match, whatever the API let through; nginx's Lua checks
 * a change set once more and refuses it whole when anything is wrong.
 */
import { APP_NAME_RE, HOST_NAME_RE } from '../../domain/index.js'
import { DEFAULT_MAX_BODY_SIZE, DEFAULT_PROXY_TIMEOUT_S, type Dropped, type Route, type RouteTable } from './model.js'

/** Host name of nginx's probe server (a server block of its own: never an app's). */
export const PROBE_HOST = 'wharf-router-probe.invalid'

/** One app in the dict: state, body limit (bytes, 0: none), proxy timeout (s), peers (`address:port`). */
export interface AppEntry {
  s: 'up' | 'idle' | 'maintenance'
  b: number
  t: number
  p: string[]
}

export interface CertEntry {
  /** PEM chain, leaf first. */
  c: string
  /** PEM private key. */
  k: string
}

/** What the dict holds: apps by name, host -> app, certificates by id, SNI name -> certificate id. */
export interface DictState {
  apps: Map<string, AppEntry>
  hosts: Map<string, string>
  certs: Map<string, CertEntry>
  sni: Map<string, string>
}

/** What the router posts to nginx's admin socket; `null` deletes. `full`: the whole table (anything else goes). */
export interface ChangeSet {
  full?: boolean
  /** With `full`: a token nginx keeps, to tell a restarted nginx (empty dict) from this one. */
  epoch?: string
  apps?: Record<string, AppEntry | null>
  hosts?: Record<string, string | null>
  certs?: Record<string, CertEntry | null>
  sni?: Record<string, string | null>
}

export interface StateOptions {
  /** Host names no app may take (`wharf.<domain>`, the probe host): nginx answers them itself. */
  reserved?: readonly string[]
  /** False for a certificate that does not parse (the router checks with node:crypto); default all good. */
  certOk?: (id: string, cert: CertEntry) => boolean
}

const IPV4_RE = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/
/** IPv6 as nginx's balancer takes it (brackets added in the peer string). */
const IPV6_RE = /^[0-9a-f:.]{2,45}$/i
const SIZE_RE = /^(0|[1-9][0-9]{0,8})([kmg]?)$/

/** An nginx size (`0`, `512k`, `10m`, `1g`) in bytes; undefined when not one. */
export function sizeBytes(size: string): number | undefined {
  const m = SIZE_RE.exec(size)
  if (!m) return undefined
  return Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2] as '' | 'k' | 'm' | 'g']
}

/** `address:port` of a server, `[v6]:port` for IPv6; undefined when not an address and port. */
export function peerOf(s: { host: string; port: number }): string | undefined {
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) return undefined
  if (IPV4_RE.test(s.host)) return `${s.host}:${s.port}`
  if (s.host.includes(':') && IPV6_RE.test(s.host)) return `[${s.host}]:${s.port}`
  return undefined
}

function stateOf(r: Route): AppEntry['s'] {
  return r.maintenance ? 'maintenance' : r.servers.length === 0 ? 'idle' : 'up'
}

/** What one app puts in the dict: its entry, its host names, its certificates and their SNI names. */
export interface AppContribution {
  entry: AppEntry
  hosts: string[]
  certs: Map<string, CertEntry>
  sni: Map<string, string>
}

/** What each route of a table puts in the dict, by app; what it leaves out is in `dropped`. */
export function contributions(table: RouteTable, opts: StateOptions = {}): { byApp: Map<string, AppContribution>; dropped: Dropped[] } {
  const dropped: Dropped[] = []
  const reserved = new Set(opts.reserved ?? [])
  reserved.add(PROBE_HOST)
  const byApp = new Map<string, AppContribution>()
  for (const r of table.routes) {
    if (!APP_NAME_RE.test(r.app) || r.app.length > 63) {
      dropped.push({ app: JSON.stringify(r.app.slice(0, 64)), what: 'app', reason: 'name not safe for nginx' })
      continue
    }
    const hosts = r.hosts.filter((h) => {
      if (!HOST_NAME_RE.test(h) || h.length > 253)
        dropped.push({ app: r.app, what: `host ${JSON.stringify(h.slice(0, 300))}`, reason: 'not a valid host name' })
      else if (reserved.has(h)) dropped.push({ app: r.app, what: `host ${h}`, reason: 'reserved for the platform' })
      else return true
      return false
    })
    if (hosts.length === 0) {
      dropped.push({ app: r.app, what: 'route', reason: 'no valid host name' })
      continue
    }
    const peers: string[] = []
    for (const s of r.servers) {
      const p = peerOf(s)
      if (p) peers.push(p)
      else dropped.push({ app: r.app, what: `server ${JSON.stringify(`${s.host}:${s.port}`.slice(0, 80))}`, reason: 'not an IP address and port' })
    }
    const b = sizeBytes(r.maxBodySize) ?? (sizeBytes(DEFAULT_MAX_BODY_SIZE) as number)
    const t = Number.isInteger(r.timeoutS) && r.timeoutS >= 1 && r.timeoutS <= 3600 ? r.timeoutS : DEFAULT_PROXY_TIMEOUT_S
    byApp.set(r.app, { entry: { s: stateOf({ ...r, servers: peers.length ? r.servers : [] }), b, t, p: peers }, hosts, certs: new Map(), sni: new Map() })
  }
  for (const c of table.certs) {
    const entry = { c: c.certificate, k: c.key }
    if (!/^[0-9a-f]{16}$/.test(c.id) || !(opts.certOk?.(c.id, entry) ?? true)) {
      dropped.push({ app: c.app, what: `certificate ${c.name}`, reason: 'does not parse (chain and key in PEM)' })
      continue
    }
    const mine = byApp.get(c.app)
    if (!mine) continue
    const domains = c.domains.filter((d) => mine.hosts.includes(d))
    if (domains.length === 0) continue
    mine.certs.set(c.id, entry)
    for (const d of domains) mine.sni.set(d, c.id)
  }
  return { byApp, dropped }
}

/** The dict's content for a route table; what it leaves out is in `dropped`. */
export function dictState(table: RouteTable, opts: StateOptions = {}): { state: DictState; dropped: Dropped[] } {
  const { byApp, dropped } = contributions(table, opts)
  return { state: merged(byApp.entries()), dropped }
}

function merged(byApp: Iterable<[string, AppContribution]>): DictState {
  const state: DictState = { apps: new Map(), hosts: new Map(), certs: new Map(), sni: new Map() }
  for (const [app, c] of byApp) {
    state.apps.set(app, c.entry)
    for (const h of c.hosts) state.hosts.set(h, app)
    for (const [id, e] of c.certs) state.certs.set(id, e)
    for (const [h, id] of c.sni) state.sni.set(h, id)
  }
  return state
}

const sameEntry = (x: AppEntry, y: AppEntry) => x.s === y.s && x.b === y.b && x.t === y.t && x.p.join() === y.p.join()

/**
 * What nginx's dict holds, by the app each entry comes from, so that a change of a few apps makes a
 * change set of their entries alone, in time proportional to them, not to the whole table.
 */
export class DictContents {
  readonly #byApp = new Map<string, AppContribution>()
  /** Certificate id -> the apps whose routes serve it (two apps may upload the same pair). */
  readonly #certUsers = new Map<string, Set<string>>()

  /** Everything, as one state (for a `full` set). */
  state(): DictState {
    return merged(this.#byApp.entries())
  }

  /** The apps it holds. */
  apps(): IterableIterator<string> {
    return this.#byApp.keys()
  }

  /** The peers of every app it holds (`address:port`, `[v6]:port`; one per app that routes to it). */
  *peers(): IterableIterator<string> {
    for (const c of this.#byApp.values()) yield* c.entry.p
  }

  /**
   * The change set that makes the dict hold `next` for the apps it names (undefined: the app puts
   * nothing in the dict any more), everything else as it is. Host names and SNI names move only
   * between apps both named in `next` (a claim that changes touches every claimant).
   */
  changes(next: ReadonlyMap<string, AppContribution | undefined>): ChangeSet {
    const apps: Record<string, AppEntry | null> = {}
    const hosts: Record<string, string | null> = {}
    const certs: Record<string, CertEntry | null> = {}
    const sni: Record<string, string | null> = {}
    let nApps = 0
    let nHosts = 0
    let nCerts = 0
    let nSni = 0
    const hostsAfter = new Map<string, string>()
    const sniAfter = new Map<string, string>()
    const certDelta = new Map<string, { entry?: CertEntry; users: Set<string> }>()
    const usersOf = (id: string) => {
      let d = certDelta.get(id)
      if (!d) certDelta.set(id, (d = { users: new Set(this.#certUsers.get(id) ?? []) }))
      return d
    }
    const hostsBefore = new Map<string, string>()
    const sniBefore = new Map<string, string>()
    for (const [app, c] of next) {
      for (const h of c?.hosts ?? []) hostsAfter.set(h, app)
      for (const [h, id] of c?.sni ?? []) sniAfter.set(h, id)
      const old = this.#byApp.get(app)
      for (const h of old?.hosts ?? []) hostsBefore.set(h, app)
      for (const [h, id] of old?.sni ?? []) sniBefore.set(h, id)
    }
    for (const [app, c] of next) {
      const old = this.#byApp.get(app)
      if (!c ? old : !old || !sameEntry(old.entry, c.entry)) {
        apps[app] = c ? c.entry : null
        nApps++
      }
      for (const h of old?.hosts ?? []) {
        if (!hostsAfter.has(h)) {
          hosts[h] = null
          nHosts++
        }
      }
      for (const h of old?.sni.keys() ?? []) {
        if (!sniAfter.has(h)) {
          sni[h] = null
          nSni++
        }
      }
      for (const id of old?.certs.keys() ?? []) usersOf(id).users.delete(app)
      for (const [id, e] of c?.certs ?? []) {
        const d = usersOf(id)
        d.users.add(app)
        d.entry = e
      }
    }
    for (const [h, app] of hostsAfter) {
      if (hostsBefore.get(h) !== app) {
        hosts[h] = app
        nHosts++
      }
    }
    for (const [h, id] of sniAfter) {
      if (sniBefore.get(h) !== id) {
        sni[h] = id
        nSni++
      }
    }
    for (const [id, d] of certDelta) {
      const before = (this.#certUsers.get(id)?.size ?? 0) > 0
      const after = d.users.size > 0
      if (before && !after) {
        certs[id] = null
        nCerts++
      } else if (!before && after && d.entry) {
        certs[id] = d.entry
        nCerts++
      }
    }
    const out: ChangeSet = {}
    if (nApps) out.apps = apps
    if (nHosts) out.hosts = hosts
    if (nCerts) out.certs = certs
    if (nSni) out.sni = sni
    return out
  }

  /** Records that the dict now holds `next` for the apps it names (after nginx took their change set). */
  commit(next: ReadonlyMap<string, AppContribution | undefined>): void {
    for (const [app, c] of next) {
      for (const id of this.#byApp.get(app)?.certs.keys() ?? []) {
        const users = this.#certUsers.get(id)
        users?.delete(app)
        if (users?.size === 0) this.#certUsers.delete(id)
      }
      if (!c) {
        this.#byApp.delete(app)
        continue
      }
      this.#byApp.set(app, c)
      for (const id of c.certs.keys()) {
        let users = this.#certUsers.get(id)
        if (!users) this.#certUsers.set(id, (users = new Set()))
        users.add(app)
      }
    }
  }
}

/** The whole state as a `full` change set. */
export function fullSet(state: DictState, epoch: string): ChangeSet {
  return {
    full: true,
    epoch,
    apps: Object.fromEntries(state.apps),
    hosts: Object.fromEntries(state.hosts),
    certs: Object.fromEntries(state.certs),
    sni: Object.fromEntries(state.sni),
  }
}

/** What turns `before` into `after` (empty sections left out). */
export function diff(before: DictState, after: DictState): ChangeSet {
  const out: ChangeSet = {}
  const section = <V>(a: Map<string, V>, b: Map<string, V>, same: (x: V, y: V) => boolean): Record<string, V | null> | undefined => {
    const rec: Record<string, V | null> = {}
    let n = 0
    for (const [k, v] of b) {
      const old = a.get(k)
      if (old === undefined || !same(old, v)) {
        rec[k] = v
        n++
      }
    }
    for (const k of a.keys()) {
      if (!b.has(k)) {
        rec[k] = null
        n++
      }
    }
    return n ? rec : undefined
  }
  const apps = section(before.apps, after.apps, sameEntry)
  const hosts = section(before.hosts, after.hosts, (x, y) => x === y)
  // Ids are hashes of chain and key: the same id is the same pair.
  const certs = section(before.certs, after.certs, () => true)
  const sni = section(before.sni, after.sni, (x, y) => x === y)
  if (apps) out.apps = apps
  if (hosts) out.hosts = hosts
  if (certs) out.certs = certs
  if (sni) out.sni = sni
  return out
}

/** True when a change set changes nothing. */
export function isEmpty(cs: ChangeSet): boolean {
  return !cs.full && !cs.apps && !cs.hosts && !cs.certs && !cs.sni
}
