/**
 * Where the platform may send on behalf of a user (webhooks, log drains): public unicast addresses
 * only, so a hook or a drain cannot be pointed at the machine itself, its private networks or a cloud
 * metadata service (169.254.169.254). The operator opens exceptions with `WHARF_OUTBOUND_ALLOW`; the
 * platform's own ports on the machine's own addresses stay closed whatever it says.
 *
 * Checked twice: when the target is added (a literal address, or every address its name resolves
 * to), and when a connection is made, on the address it is made to ({@link outboundLookup}), so a name
 * that resolves elsewhere later (DNS rebinding) is caught too.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import ipaddr from 'ipaddr.js'
import type { WharfConfig } from './config.js'
import { WharfError } from './errors.js'

/** One entry of `WHARF_OUTBOUND_ALLOW`: a host name or address (any port, or one port), or a CIDR range. */
export type OutboundRule = ({ kind: 'host'; host: string; port?: number } | { kind: 'cidr'; range: [ipaddr.IPv4 | ipaddr.IPv6, number] }) & {
  /** The entry as written. */
  text: string
}

/** What a target is checked against. */
export interface OutboundPolicy {
  /** The operator's exceptions (`WHARF_OUTBOUND_ALLOW`). */
  allow: readonly OutboundRule[]
  /** The platform's own ports: refused on the machine's own addresses, even when `allow` lists them. */
  ownPorts: readonly number[]
  /**
   * The platform's parts elsewhere (an external NATS, Postgres or S3 endpoint: `host:port`, as named
   * in their URLs): refused, even when `allow` lists their network.
   */
  platform?: readonly { host: string; port: number }[]
}

/** `host` and port of a URL (its scheme's default port when it has none); undefined when it is not one. */
function endpointOf(raw: string | undefined, defaultPort: number): { host: string; port: number } | undefined {
  if (!raw) return undefined
  try {
    const u = new URL(raw)
    const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase()
    return { host: isIP(host) ? normal(ipaddr.parse(host)).toString() : host, port: u.port ? Number(u.port) : defaultPort }
  } catch {
    return undefined
  }
}

/** The policy of a platform: its allow list and every port it listens on. */
export function outboundPolicy(
  cfg: Pick<WharfConfig, 'outboundAllow' | 'ports'> & Partial<Pick<WharfConfig, 'natsUrl' | 'databaseUrl' | 's3'>>,
): OutboundPolicy {
  const platform = [
    endpointOf(cfg.natsUrl, 4222),
    endpointOf(cfg.databaseUrl, 5432),
    endpointOf(cfg.s3?.endpoint, cfg.s3?.endpoint.startsWith('https:') ? 443 : 80),
  ]
  return { allow: cfg.outboundAllow, ownPorts: Object.values(cfg.ports), platform: platform.filter((e) => e !== undefined) }
}

/**
 * Parses `WHARF_OUTBOUND_ALLOW`: a comma list of `host`, `host:port`, `[v6]:port`, an address or a
 * CIDR range (`10.0.0.0/8`, `fd00::/8`). Empty: no exceptions. Throws a clear error naming the bad entry.
 */
export function parseOutboundAllow(raw: string | undefined): OutboundRule[] {
  const rules: OutboundRule[] = []
  for (const part of (raw ?? '').split(',')) {
    const entry = part.trim().toLowerCase()
    if (!entry) continue
    const bad = () => new Error(`WHARF_OUTBOUND_ALLOW: ${JSON.stringify(entry)} is not a host, host:port or CIDR range`)
    if (entry.includes('/')) {
      if (!ipaddr.isValidCIDR(entry)) throw bad()
      rules.push({ kind: 'cidr', range: ipaddr.parseCIDR(entry), text: entry })
      continue
    }
    let host = entry
    let port: number | undefined
    const v6port = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry)
    if (v6port) {
      host = v6port[1]!
      port = v6port[2] === undefined ? undefined : Number(v6port[2])
    } else if (isIP(entry) !== 6 && entry.includes(':')) {
      const i = entry.lastIndexOf(':')
      host = entry.slice(0, i)
      port = Number(entry.slice(i + 1))
    }
    if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) throw bad()
    if (!/^[a-z0-9.:_-]+$/.test(host)) throw bad()
    const name = isIP(host) ? normal(ipaddr.parse(host)).toString() : host.replace(/\.$/, '')
    rules.push({ kind: 'host', host: name, ...(port === undefined ? {} : { port }), text: entry })
  }
  return rules
}

/** IPv4-mapped IPv6 addresses as the IPv4 address they are. */
function normal(addr: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() ? (addr as ipaddr.IPv6).toIPv4Address() : addr
}

/** The machine's own addresses (every interface's), read once: a target on one of them is the machine itself. */
let own: Set<string> | undefined
function ownAddresses(): Set<string> {
  if (!own) {
    own = new Set()
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) if (ipaddr.isValid(a.address.split('%')[0]!)) own.add(normal(ipaddr.parse(a.address.split('%')[0]!)).toString())
    }
  }
  return own
}

/** Whether the allow list lets `host` (as named) or `address` (as resolved) on `port` through. */
function allowed(policy: OutboundPolicy, host: string, address: ipaddr.IPv4 | ipaddr.IPv6, port: number): boolean {
  const name = host.toLowerCase().replace(/\.$/, '')
  const addr = address.toString()
  return policy.allow.some((r) => {
    if (r.kind === 'cidr') return address.kind() === r.range[0].kind() && address.match(r.range)
    return (r.host === name || r.host === addr) && (r.port === undefined || r.port === port)
  })
}

/**
 * Throws `WHARF_FORBIDDEN` unless `address` (one the target's name resolved to, or the literal one) on
 * `port` may be sent to under `policy`. `host` is the name as the user gave it, for the allow list and
 * the message.
 */
export function checkAddress(policy: OutboundPolicy, host: string, address: string, port: number): void {
  if (!ipaddr.isValid(address)) throw refused(host, port, `${address} is not an IP address`)
  const addr = normal(ipaddr.parse(address))
  const range = addr.range()
  const self = range === 'loopback' || range === 'unspecified' || ownAddresses().has(addr.toString())
  if (self && policy.ownPorts.includes(port)) throw refused(host, port, `port ${port} of ${addr} is one of the platform's own`)
  const name = host.toLowerCase().replace(/\.$/, '')
  if (policy.platform?.some((p) => p.port === port && (p.host === name || p.host === addr.toString())))
    throw refused(host, port, `${host}:${port} is one of the platform's parts (NATS, Postgres or the object store)`)
  if (allowed(policy, host, addr, port)) return
  if (self) throw refused(host, port, `${addr} is this machine (${range === 'unicast' ? 'own address' : range})`)
  if (range !== 'unicast') throw refused(host, port, `${addr} is a ${RANGE_NAMES[range] ?? range} address`)
}

const RANGE_NAMES: Record<string, string> = {
  linkLocal: 'link-local',
  private: 'private',
  uniqueLocal: 'private (unique local)',
  carrierGradeNat: 'carrier-grade NAT',
  multicast: 'multicast',
  broadcast: 'broadcast',
  reserved: 'reserved',
}

function refused(host: string, port: number, why: string): WharfError {
  return new WharfError('WHARF_FORBIDDEN', `refused target ${host}:${port}: ${why} (an operator may allow it with WHARF_OUTBOUND_ALLOW)`, {
    details: { host, port },
  })
}

/** Resolves a name to every address it has (an address resolves to itself). */
export type Resolver = (host: string) => Promise<string[]>

/** The system resolver (getaddrinfo, as connections use). */
export const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve((addrs as LookupAddress[]).map((a) => a.address)))),
  )

/**
 * Checks a target when it is added: a literal address, or every address its name resolves to now
 * (one refused address refuses the target). A name that does not resolve is refused (`WHARF_INVALID`).
 */
export async function checkTarget(policy: OutboundPolicy, host: string, port: number, resolve: Resolver = systemResolver): Promise<void> {
  const bare = host.replace(/^\[|\]$/g, '')
  let addresses: string[]
  if (isIP(bare)) addresses = [bare]
  else {
    try {
      addresses = await resolve(bare)
    } catch (err) {
      throw new WharfError('WHARF_INVALID', `the host ${bare} does not resolve: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        details: { host: bare },
      })
    }
    if (addresses.length === 0) throw new WharfError('WHARF_INVALID', `the host ${bare} does not resolve`, { details: { host: bare } })
  }
  for (const a of addresses) checkAddress(policy, bare, a, port)
}

/** The port of a URL, its scheme's default when it has none. */
export function urlPort(u: URL): number {
  if (u.port) return Number(u.port)
  return u.protocol === 'https:' ? 443 : 80
}

/**
 * A `lookup` for `net.connect` / undici's `connect.lookup`: resolves the name and checks each address
 * with {@link checkAddress} for `port` before the connection is made to it, so the address connected
 * to is the one checked (no second resolution a rebinding DNS could answer differently).
 */
export function outboundLookup(policy: OutboundPolicy, port: number, resolve: Resolver = systemResolver) {
  return (
    hostname: string,
    options: { all?: boolean } | number | undefined,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    const all = typeof options === 'object' && options?.all === true
    const bare = hostname.replace(/^\[|\]$/g, '')
    const addresses = isIP(bare) ? Promise.resolve([bare]) : resolve(bare)
    addresses.then(
      (list) => {
        try {
          if (list.length === 0) throw new WharfError('WHARF_INVALID', `the host ${bare} does not resolve`)
          for (const a of list) checkAddress(policy, bare, a, port)
        } catch (err) {
          return callback(err as NodeJS.ErrnoException, all ? [] : '')
        }
        const out = list.map((address) => ({ address, family: isIP(address) }))
        if (all) callback(null, out)
        else callback(null, out[0]!.address, out[0]!.family)
      },
      (err: NodeJS.ErrnoException) => callback(err, all ? [] : ''),
    )
  }
}
