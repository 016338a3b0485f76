/**
 * A NATS cluster with JetStream: one `nats-server` per member, routes between all of them, each
 * with its own store directory, config file, pid and log. The platform's streams then take
 * `WHARF_NATS_REPLICAS=3` and its clients every member's URL (`WHARF_NATS_URL=nats://a,nats://b,...`),
 * so the loss of one server loses no event and stops no append (the stream elects another leader).
 *
 * A member may run inside a network namespace (a simulated host of infra/hosts.ts) or on this
 * machine's loopback.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { isAlive, portOpen, startDaemon, stopPid, tail, waitUntil } from './proc.js'

export interface NatsMember {
  /** Server name (unique in the cluster), `[a-z0-9-]`. */
  name: string
  /** The address it listens on (clients and routes). */
  host: string
  clientPort: number
  clusterPort: number
  /** Run inside this network namespace (`/run/netns/<netns>`), else in this one. */
  netns?: string
  /** The HTTP monitoring port (`/varz`, `/jsz`), on `host`; none when omitted. */
  monitorPort?: number
}

export interface RunningMember extends NatsMember {
  pid: number
  url: string
  dir: string
}

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,31}$/
const IPV4_RE = /^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$/

/** The server config of `m` in a cluster of `members` (pure). */
export function memberConfig(m: NatsMember, members: readonly NatsMember[], dir: string, cluster: string): string {
  if (!NAME_RE.test(m.name) || !NAME_RE.test(cluster))
    throw new Error(`nats cluster: names must be [a-z0-9-], got ${JSON.stringify(m.name)} / ${JSON.stringify(cluster)}`)
  for (const x of members) if (!IPV4_RE.test(x.host)) throw new Error(`nats cluster: ${JSON.stringify(x.host)} is not an IPv4 address`)
  const routes = members.filter((x) => x.name !== m.name).map((x) => `    "nats-route://${x.host}:${x.clusterPort}"`)
  return [
    `server_name: "${m.name}"`,
    `listen: "${m.host}:${m.clientPort}"`,
    ...(m.monitorPort ? [`http: "${m.host}:${m.monitorPort}"`] : []),
    `jetstream { store_dir: "${join(dir, 'js')}" }`,
    // A client whose host is cut off sends no RST: pinged every 2 s (ping_max 2), it is dropped within
    // 4-6 s instead of the default 2 min x 2. Routes are not dropped by it in nats-server 2.9.10: a
    // route to a member frozen without an RST stayed up for the 4 minutes measured (the others send it
    // Raft traffic all along), so a route to a member cut off lasts until TCP gives up on it
    // (net.ipv4.tcp_retries2, see infra/hosts.ts).
    'ping_interval: "2s"',
    'ping_max: 2',
    'cluster {',
    `  name: "${cluster}"`,
    `  listen: "${m.host}:${m.clusterPort}"`,
    '  routes: [',
    ...routes,
    '  ]',
    '}',
    '',
  ].join('\n')
}

/** The client URL list of a cluster: every member, comma-separated (`WHARF_NATS_URL`). */
export function clusterUrl(members: readonly Pick<NatsMember, 'host' | 'clientPort'>[]): string {
  return members.map((m) => `nats://${m.host}:${m.clientPort}`).join(',')
}

/** Starts member `m` of `members` (its config and store under `dir/<name>`, kept from an earlier run); answers at once. */
function spawnMember(dir: string, m: NatsMember, members: readonly NatsMember[], cluster: string): RunningMember {
  const mdir = join(dir, m.name)
  mkdirSync(mdir, { recursive: true })
  const conf = join(mdir, 'nats.conf')
  writeFileSync(conf, memberConfig(m, members, mdir, cluster))
  const cmd = ['nats-server', '-c', conf]
  const pid = startDaemon({
    cmd: m.netns ? 'nsenter' : cmd[0]!,
    args: m.netns ? [`--net=/run/netns/${m.netns}`, ...cmd] : cmd.slice(1),
    logFile: join(mdir, 'nats.log'),
    pidfile: join(mdir, 'nats.pid'),
  })
  return { ...m, pid, url: `nats://${m.host}:${m.clientPort}`, dir: mdir }
}

async function accepting(m: RunningMember): Promise<void> {
  await waitUntil(`NATS ${m.name}`, () => portOpen(m.clientPort, m.host), 20_000).catch((err) => {
    throw new Error(`${(err as Error).message}\n${tail(join(m.dir, 'nats.log'))}`)
  })
}

/** Starts every member (under `dir/<name>`); answers once each accepts clients. */
export async function startNatsCluster(dir: string, members: readonly NatsMember[], cluster = 'wharf'): Promise<RunningMember[]> {
  const running: RunningMember[] = []
  try {
    for (const m of members) running.push(spawnMember(dir, m, members, cluster))
    for (const m of running) await accepting(m)
    return running
  } catch (err) {
    await stopNatsCluster(running)
    throw err
  }
}

/**
 * Starts member `name` again after it was lost (a host back from a cut): the same config, name and
 * store directory, so it rejoins the cluster and catches its streams' replicas up from the others.
 * Answers it (with its new pid) once it accepts clients.
 */
export async function restartNatsMember(dir: string, members: readonly NatsMember[], name: string, cluster = 'wharf'): Promise<RunningMember> {
  const m = members.find((x) => x.name === name)
  if (!m) throw new Error(`nats cluster: no member ${name}`)
  const running = spawnMember(dir, m, members, cluster)
  try {
    await accepting(running)
  } catch (err) {
    await stopNatsCluster([running])
    throw err
  }
  return running
}

/** Stops members by pid (SIGTERM, then SIGKILL after `timeoutMs`, default 5_000). */
export async function stopNatsCluster(members: readonly Pick<RunningMember, 'pid'>[], timeoutMs = 5_000): Promise<void> {
  await Promise.all(members.filter((m) => isAlive(m.pid)).map((m) => stopPid(m.pid, { timeoutMs })))
}
