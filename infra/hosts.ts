/**
 * Simulated hosts on one machine: each a network namespace with its own Docker engine, joined into
 * one Docker Swarm, for testing (and trying) Wharf on many hosts. A "switch" namespace holds a
 * bridge; each host gets a veth pair into it (its `eth0`), and the root namespace one more, so the
 * Wharf services reach every host at `<address>:<port>`. The root namespace gets an address and a
 * route, and no iptables rule or bridge (INFRA-NOTES "Three simulated hosts").
 *
 * Every engine starts with `nsenter --net=<ns> unshare --uts --mount --propagation slave` (its own
 * hostname; container mounts stay out of the root namespace) and has its own data-root, exec-root,
 * socket, pidfile, config file and cgroup parent. What was made is written to `<dir>/topology.json`,
 * so another process (`infra hosts:down`) takes it down by pid and by name.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import Docker from 'dockerode'
import { ENGINE_ARGS, stopOrphanedContainerd } from './parts/docker.js'
import { isAlive, portOpen, startDaemon, stopPid, tail, waitUntil } from './proc.js'

const execFileP = promisify(execFile)

/** Names of namespaces and links start with this; at most 8 characters of `[a-z0-9]` (interface names stop at 15). */
const PREFIX_RE = /^[a-z][a-z0-9]{0,7}$/
/** The first three octets of a /24 in a private range outside 10.0.0.0/8 (Swarm's overlay pool). */
const SUBNET_RE = /^(192\.168|172\.(1[6-9]|2[0-9]|3[01]))\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$/

export interface HostsOptions {
  /** Where the engines keep data, sockets, pids and logs (made if missing). */
  dir: string
  /** Namespaces are `<prefix>-sw`, `<prefix>-h1`...; links `<prefix>r`, `<prefix>h1`... Default `wharf`. */
  prefix?: string
  /** The hosts' /24, as its first three octets, default `192.168.217` (root `.1`, hosts `.11`, `.12`...). */
  subnet?: string
  /** How many hosts, 1-9, default 3. */
  count?: number
  /** Swarm node labels per host (index 0 is host 1), e.g. `[{ zone: 'a' }, { zone: 'b' }]`. */
  labels?: Record<string, string>[]
  /**
   * A registry on this machine's loopback that the hosts must pull from at the same address: each
   * host gets `127.0.0.1:<port>` forwarded (through the root namespace's address) to it.
   */
  registryPort?: number
  /** Swarm's node heartbeat, ms, default 1_000 (a lost host is marked down in about 3 heartbeats). */
  heartbeatMs?: number
  /** Progress lines. */
  say?: (line: string) => void
}

/** One simulated host. */
export interface SimHost {
  /** `h1`, `h2`... (also its hostname and Swarm node name, after the prefix). */
  name: string
  netns: string
  address: string
  /** `unix://...`: the engine's API, reached from the root namespace. */
  dockerHost: string
  /** The engine's pid (dockerd). */
  pid: number
  /** pid of the registry forwarder in the host's namespace, when there is one. */
  forwarderPid?: number
  dir: string
  cgroupParent: string
  role: 'manager' | 'worker'
}

/** What {@link startHosts} made, as written to `<dir>/topology.json`. */
export interface Topology {
  prefix: string
  subnet: string
  dir: string
  switchNetns: string
  rootLink: string
  rootAddress: string
  hosts: SimHost[]
  /** The Swarm's worker join token (for a host added later). */
  workerToken?: string
  /** The registry port the hosts pull from at their 127.0.0.1, and the pid of the relay to it in this namespace. */
  registryPort?: number
  relayPid?: number
}

async function ip(args: string[]): Promise<string> {
  const { stdout } = await execFileP('ip', args)
  return stdout
}

/** `ip` in namespace `ns`. */
async function ipIn(ns: string, args: string[]): Promise<string> {
  return ip(['-n', ns, ...args])
}

function topologyFile(dir: string): string {
  return join(dir, 'topology.json')
}

/** The topology recorded under `dir`, if any. */
export function readTopology(dir: string): Topology | undefined {
  try {
    return JSON.parse(readFileSync(topologyFile(dir), 'utf8')) as Topology
  } catch {
    return undefined
  }
}

function record(t: Topology): void {
  writeFileSync(topologyFile(t.dir), `${JSON.stringify(t, null, 2)}\n`)
}

/** Checks the options: names that become interface and namespace names, a private /24 not yet routed here. */
export function checkHostsOptions(opts: HostsOptions, routes = ''): { prefix: string; subnet: string; count: number } {
  const prefix = opts.prefix ?? 'wharf'
  const subnet = opts.subnet ?? '192.168.217'
  const count = opts.count ?? 3
  if (!PREFIX_RE.test(prefix)) throw new Error(`hosts: prefix ${JSON.stringify(prefix)} must be 1-8 characters of [a-z0-9], starting with a letter`)
  if (!SUBNET_RE.test(subnet))
    throw new Error(`hosts: subnet ${JSON.stringify(subnet)} must be the first three octets of a /24 in 192.168.0.0/16 or 172.16.0.0/12`)
  if (!Number.isInteger(count) || count < 1 || count > 9) throw new Error(`hosts: count must be 1-9, got ${count}`)
  if (routes.split('\n').some((l) => l.startsWith(`${subnet}.`)))
    throw new Error(`hosts: ${subnet}.0/24 is already routed on this machine; choose another subnet`)
  return { prefix, subnet, count }
}

/** A free /24 among `192.168.<from..to>` (none routed on this machine yet). */
export async function freeSubnet(from = 200, to = 250): Promise<string> {
  const routes = await ip(['-4', 'route', 'show'])
  for (let n = from; n <= to; n++) if (!routes.split('\n').some((l) => l.startsWith(`192.168.${n}.`))) return `192.168.${n}`
  throw new Error(`hosts: no free /24 in 192.168.${from}-${to}`)
}

function dockerOf(host: Pick<SimHost, 'dockerHost'>): Docker {
  return new Docker({ socketPath: host.dockerHost.slice('unix://'.length) })
}

/** Makes the switch namespace with its bridge, and the root namespace's link into it. */
async function makeSwitch(t: Topology): Promise<void> {
  await ip(['netns', 'add', t.switchNetns])
  await ipIn(t.switchNetns, ['link', 'set', 'lo', 'up'])
  await ipIn(t.switchNetns, ['link', 'add', 'br0', 'type', 'bridge'])
  await ipIn(t.switchNetns, ['link', 'set', 'br0', 'up'])
  await ip(['link', 'add', t.rootLink, 'type', 'veth', 'peer', 'name', `${t.rootLink}s`])
  await ip(['link', 'set', `${t.rootLink}s`, 'netns', t.switchNetns])
  await ipIn(t.switchNetns, ['link', 'set', `${t.rootLink}s`, 'master', 'br0', 'up'])
  await ip(['addr', 'add', `${t.rootAddress}/24`, 'dev', t.rootLink])
  await ip(['link', 'set', t.rootLink, 'up'])
}

/**
 * How many times the kernel of a host retransmits unacknowledged data before it drops the connection
 * (`net.ipv4.tcp_retries2`, per network namespace; Linux's default 15 is ~15 minutes). A host cut off
 * sends no RST: the others' NATS routes to it carry Raft traffic, so with 5 they give up on it after
 * ~13 s (200 ms doubled 6 times), and the cluster stops sending requests its way. The README's
 * "Production topology" asks the same of the NATS hosts.
 */
export const TCP_RETRIES2 = 5

/** Makes host `i`'s namespace, its `eth0` on the switch with its address. */
async function makeHostNet(t: Topology, name: string, netns: string, address: string): Promise<void> {
  const link = `${t.prefix}${name}`
  await ip(['netns', 'add', netns])
  await execFileP('ip', ['netns', 'exec', netns, 'sysctl', '-qw', `net.ipv4.tcp_retries2=${TCP_RETRIES2}`])
  await ipIn(netns, ['link', 'set', 'lo', 'up'])
  await ip(['link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}s`])
  await ip(['link', 'set', `${link}s`, 'netns', t.switchNetns])
  await ipIn(t.switchNetns, ['link', 'set', `${link}s`, 'master', 'br0', 'up'])
  await ip(['link', 'set', link, 'netns', netns])
  await ipIn(netns, ['link', 'set', link, 'name', 'eth0'])
  await ipIn(netns, ['addr', 'add', `${address}/24`, 'dev', 'eth0'])
  await ipIn(netns, ['link', 'set', 'eth0', 'up'])
}

/** Starts host `name`'s engine in its namespace; answers once its API answers. */
async function startEngine(
  t: Topology,
  name: string,
  netns: string,
  registryPort: number | undefined,
): Promise<Pick<SimHost, 'dir' | 'dockerHost' | 'pid' | 'cgroupParent'>> {
  const dir = join(t.dir, name)
  // containerd's socket lives under the exec-root: a short path (unix sockets stop at 107 bytes).
  const exec = `/run/${t.prefix}-${name}`
  mkdirSync(dir, { recursive: true })
  mkdirSync(exec, { recursive: true })
  const socket = join(dir, 'docker.sock')
  const pidfile = join(dir, 'dockerd.pid')
  const configFile = join(dir, 'daemon.json')
  const cgroupParent = `${t.prefix}-${name}`
  rmSync(socket, { force: true })
  rmSync(pidfile, { force: true })
  // Its own config file: never /etc/docker/daemon.json, which belongs to the machine's engine.
  writeFileSync(configFile, `${JSON.stringify({ 'insecure-registries': registryPort ? [`127.0.0.1:${registryPort}`] : [] }, null, 2)}\n`)
  const hostname = `${t.prefix}-${name}`
  const pid = startDaemon({
    cmd: 'nsenter',
    args: [
      `--net=/run/netns/${netns}`,
      'unshare',
      '--uts',
      '--mount',
      '--propagation',
      'slave',
      'sh',
      '-c',
      'hostname "$0" && exec dockerd "$@"',
      hostname,
      // As Wharf's own engine: published ports forwarded by the kernel, so apps answer while it is down.
      ...ENGINE_ARGS,
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      exec,
      '-H',
      `unix://${socket}`,
      '--pidfile',
      pidfile,
      '--config-file',
      configFile,
      '--cgroup-parent',
      cgroupParent,
    ],
    logFile: join(dir, 'dockerd.log'),
    pidfile: join(dir, 'engine.pid'),
  })
  const host = { dir, dockerHost: `unix://${socket}`, pid, cgroupParent }
  const docker = dockerOf(host)
  await waitUntil(`Docker engine of ${name}`, async () => !!(await docker.ping()), 60_000).catch((err) => {
    throw new Error(`${(err as Error).message}\n${tail(join(dir, 'dockerd.log'))}`)
  })
  return host
}

/**
 * A TCP forwarder as a Node one-liner (so it runs from a compiled build and from TypeScript alike):
 * `node -e FORWARDER <listen host> <listen port> <target host> <target port>`.
 */
const FORWARDER = `const net = require('node:net'); const [lhost, lport, host, port] = process.argv.slice(1);
net.createServer((c) => { const u = net.connect({ host, port: Number(port) }); c.pipe(u).pipe(c);
const end = () => { c.destroy(); u.destroy() }; for (const s of [c, u]) { s.on('error', end); s.on('close', end) } })
.listen(Number(lport), lhost)`

/**
 * The registry seen from a host: 127.0.0.1:`port` in its namespace forwards to the root namespace's
 * `rootAddress:port`, which the relay ({@link startRelay}) forwards to this machine's 127.0.0.1:`port`.
 */
function startForwarder(t: Topology, name: string, netns: string, port: number): number {
  return startDaemon({
    cmd: 'nsenter',
    args: [`--net=/run/netns/${netns}`, process.execPath, '-e', FORWARDER, '127.0.0.1', String(port), t.rootAddress, String(port)],
    logFile: join(t.dir, name, 'forwarder.log'),
    pidfile: join(t.dir, name, 'forwarder.pid'),
  })
}

/** The root namespace's side of the registry path: `rootAddress:port` -> 127.0.0.1:`port`. */
async function startRelay(t: Topology, port: number): Promise<number> {
  const pid = startDaemon({
    cmd: process.execPath,
    args: ['-e', FORWARDER, t.rootAddress, String(port), '127.0.0.1', String(port)],
    logFile: join(t.dir, 'relay.log'),
    pidfile: join(t.dir, 'relay.pid'),
  })
  await waitUntil('registry relay', () => portOpen(port, t.rootAddress), 10_000)
  return pid
}

/**
 * Starts host `name`'s engine again when its process died (killed, crashed), with the same
 * namespace, data-root and swarm state; records the new pid. Answers whether it started one.
 * Supervised only when asked for (`infra supervise --parts ...,hosts`): `hosts:down` kills the
 * engines before it deletes their namespaces, and a supervisor must not start them again meanwhile.
 */
export async function restartDeadEngines(t: Topology): Promise<string[]> {
  const started: string[] = []
  for (const h of t.hosts) {
    if (isAlive(h.pid) || !existsSync(`/run/netns/${h.netns}`)) continue
    // A new dockerd that finds the dead engine's containerd ("containerd is still running", even as a
    // zombie) times out dialling its socket and exits: that one is stopped and forgotten first. The
    // containers' shims keep running; the new containerd takes them over.
    await stopOrphanedContainerd(`/run/${t.prefix}-${h.name}`)
    const engine = await startEngine(t, h.name, h.netns, t.registryPort)
    h.pid = engine.pid
    started.push(h.name)
  }
  if (started.length) record(t)
  return started
}

/** What a host's swarm node says of itself. */
async function nodeId(host: SimHost): Promise<string> {
  const info = (await dockerOf(host).info()) as { Swarm?: { NodeID?: string } }
  if (!info.Swarm?.NodeID) throw new Error(`${host.name}: not in a swarm`)
  return info.Swarm.NodeID
}

/** Sets `labels` on host's node (through the manager). */
async function labelNode(manager: Docker, id: string, labels: Record<string, string>): Promise<void> {
  const node = manager.getNode(id)
  const info = (await node.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> & { Labels?: Record<string, string> } }
  await node.update({ version: info.Version.Index, ...info.Spec, Labels: { ...(info.Spec.Labels ?? {}), ...labels } })
}

/**
 * Makes `count` simulated hosts and joins their engines into one swarm (host 1 its manager, the others
 * workers), with `labels` on the nodes. On failure, takes down what it made and throws.
 * With `registryPort`, every host pulls from the registry at 127.0.0.1:`registryPort`, as this machine does.
 */
export async function startHosts(opts: HostsOptions): Promise<Topology> {
  const say = opts.say ?? (() => {})
  const { prefix, subnet, count } = checkHostsOptions(opts, await ip(['-4', 'route', 'show']))
  if (existsSync(`/run/netns/${prefix}-sw`)) throw new Error(`hosts: namespace ${prefix}-sw exists already (take it down first: infra hosts:down)`)
  mkdirSync(opts.dir, { recursive: true })
  const t: Topology = {
    prefix,
    subnet,
    dir: opts.dir,
    switchNetns: `${prefix}-sw`,
    rootLink: `${prefix}r`,
    rootAddress: `${subnet}.1`,
    hosts: [],
  }
  record(t)
  try {
    await makeSwitch(t)
    say(`hosts: switch ${t.switchNetns}, this machine at ${t.rootAddress} on ${t.rootLink}`)
    if (opts.registryPort) {
      t.registryPort = opts.registryPort
      t.relayPid = await startRelay(t, opts.registryPort)
      record(t)
    }
    const started = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const name = `h${i + 1}`
        const netns = `${prefix}-${name}`
        const address = `${subnet}.${11 + i}`
        await makeHostNet(t, name, netns, address)
        const engine = await startEngine(t, name, netns, t.registryPort)
        const host: SimHost = { name, netns, address, ...engine, role: i === 0 ? 'manager' : 'worker' }
        if (t.registryPort) host.forwarderPid = startForwarder(t, name, netns, t.registryPort)
        return host
      }),
    )
    t.hosts = started
    record(t)
    const [first, ...rest] = started
    const manager = dockerOf(first!)
    const t0 = Date.now()
    await manager.swarmInit({
      ListenAddr: `${first!.address}:2377`,
      AdvertiseAddr: first!.address,
      Spec: { Dispatcher: { HeartbeatPeriod: (opts.heartbeatMs ?? 1_000) * 1e6 } },
    })
    const swarm = (await manager.swarmInspect()) as { JoinTokens: { Worker: string } }
    t.workerToken = swarm.JoinTokens.Worker
    record(t)
    await Promise.all(rest.map((h) => joinSwarm(t, h)))
    for (const [i, h] of started.entries()) {
      const labels = opts.labels?.[i]
      if (labels && Object.keys(labels).length) await labelNode(manager, await nodeId(h), labels)
    }
    await waitUntil('every node ready', async () => {
      const nodes = (await manager.listNodes()) as { Status?: { State?: string } }[]
      return nodes.length === count && nodes.every((n) => n.Status?.State === 'ready')
    })
    say(`hosts: ${count} engines in one swarm (${Date.now() - t0} ms): ${started.map((h) => `${h.name} ${h.address}`).join(', ')}`)
    return t
  } catch (err) {
    await stopHosts(t).catch(() => {})
    throw err
  }
}

/** Joins host `h` to the swarm of `t` as a worker. */
async function joinSwarm(t: Topology, h: SimHost): Promise<void> {
  const manager = t.hosts.find((x) => x.role === 'manager')
  if (!manager || !t.workerToken) throw new Error('hosts: no manager to join')
  await dockerOf(h).swarmJoin({
    ListenAddr: `${h.address}:2377`,
    AdvertiseAddr: h.address,
    RemoteAddrs: [`${manager.address}:2377`],
    JoinToken: t.workerToken,
  })
}

/**
 * Adds one host to a running topology (its namespace, engine, swarm join as a worker, labels);
 * answers it with the time it took.
 */
export async function addHost(t: Topology, opts: { labels?: Record<string, string> } = {}): Promise<SimHost> {
  const i = t.hosts.length
  if (i >= 9) throw new Error('hosts: at most 9 hosts')
  const name = `h${i + 1}`
  const netns = `${t.prefix}-${name}`
  const address = `${t.subnet}.${11 + i}`
  await makeHostNet(t, name, netns, address)
  const engine = await startEngine(t, name, netns, t.registryPort)
  const host: SimHost = { name, netns, address, ...engine, role: 'worker' }
  if (t.registryPort) host.forwarderPid = startForwarder(t, name, netns, t.registryPort)
  t.hosts.push(host)
  record(t)
  await joinSwarm(t, host)
  const manager = dockerOf(t.hosts.find((x) => x.role === 'manager')!)
  if (opts.labels && Object.keys(opts.labels).length) await labelNode(manager, await nodeId(host), opts.labels)
  return host
}

/** Pids of every process in `netns` (engine, containerd, shims, forwarder) and in the cgroups under `parent` (containers). */
export async function hostPids(netns: string, cgroupParent: string): Promise<number[]> {
  const pids = new Set<number>()
  try {
    for (const p of (await ip(['netns', 'pids', netns])).split('\n')) if (/^\d+$/.test(p.trim())) pids.add(Number(p))
  } catch {}
  for (const dir of cgroupDirs(cgroupParent)) {
    try {
      for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (/^\d+$/.test(p.trim())) pids.add(Number(p))
    } catch {}
  }
  return [...pids]
}

/** The cgroup directories at or under `parent` in every v1 hierarchy (and v2), deepest first. */
export function cgroupDirs(parent: string, root = '/sys/fs/cgroup'): string[] {
  const out: string[] = []
  const walk = (dir: string) => {
    out.push(dir)
    let entries: string[] = []
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
    } catch {}
    for (const e of entries) walk(join(dir, e))
  }
  const hierarchies = [root, ...safeList(root).map((h) => join(root, h))]
  for (const h of hierarchies) if (existsSync(join(h, parent))) walk(join(h, parent))
  return out.sort((a, b) => b.length - a.length)
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
  } catch {
    return []
  }
}

/**
 * Cuts host `name` off as a machine that loses power would be: its link goes down and every process
 * of its namespace and its containers is killed (SIGKILL). Its namespace stays (for {@link stopHosts}).
 */
export async function killHost(t: Topology, name: string): Promise<void> {
  const h = t.hosts.find((x) => x.name === name)
  if (!h) throw new Error(`hosts: no host ${name}`)
  await ipIn(h.netns, ['link', 'set', 'eth0', 'down']).catch(() => {})
  await killAll(h, 'SIGKILL')
}

/**
 * Brings host `name` back after {@link killHost}, as a machine that is powered on again: its link up,
 * its engine started on the same data-root (it still holds the swarm's state: the node rejoins as
 * what it was, under the same node id), and its registry forwarder. Answers once the engine answers;
 * the node turns `ready` in the swarm a heartbeat or two later.
 */
export async function restartHost(t: Topology, name: string): Promise<SimHost> {
  const h = t.hosts.find((x) => x.name === name)
  if (!h) throw new Error(`hosts: no host ${name}`)
  if (isAlive(h.pid)) throw new Error(`hosts: the engine of ${name} runs (pid ${h.pid}): cut it off first`)
  await ipIn(h.netns, ['link', 'set', 'eth0', 'up'])
  const engine = await startEngine(t, h.name, h.netns, t.registryPort)
  h.pid = engine.pid
  if (t.registryPort) h.forwarderPid = startForwarder(t, h.name, h.netns, t.registryPort)
  record(t)
  return h
}

async function killAll(h: SimHost, signal: NodeJS.Signals): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const pids = await hostPids(h.netns, h.cgroupParent)
    if (pids.length === 0) return
    for (const pid of pids) {
      try {
        process.kill(pid, signal)
      } catch {}
    }
    await sleep(100)
  }
}

/**
 * Takes the topology down: stops each engine by pid (`graceful`: SIGTERM and up to 15 s, so it stops
 * its containers; else SIGKILL), kills what is left in its namespace and cgroups, deletes the
 * namespaces, the root link, the cgroup directories, the exec-roots and `dir`.
 */
export async function stopHosts(t: Topology, opts: { graceful?: boolean; keepDir?: boolean } = {}): Promise<void> {
  await Promise.all(
    t.hosts.map(async (h) => {
      if (opts.graceful && isAlive(h.pid)) await stopPid(h.pid, { timeoutMs: 15_000 })
      await killAll(h, 'SIGKILL')
      for (const dir of cgroupDirs(h.cgroupParent)) {
        try {
          rmSync(dir, { recursive: false })
        } catch {
          await execFileP('rmdir', [dir]).catch(() => {})
        }
      }
      await ip(['netns', 'del', h.netns]).catch(() => {})
      rmSync(`/run/${t.prefix}-${h.name}`, { recursive: true, force: true })
    }),
  )
  if (t.relayPid) await stopPid(t.relayPid, { timeoutMs: 2_000 })
  // Hosts recorded before they were complete: their namespaces by name.
  for (let i = 1; i <= 9; i++) if (existsSync(`/run/netns/${t.prefix}-h${i}`)) await ip(['netns', 'del', `${t.prefix}-h${i}`]).catch(() => {})
  await ip(['link', 'del', t.rootLink]).catch(() => {})
  await ip(['netns', 'del', t.switchNetns]).catch(() => {})
  if (!opts.keepDir) rmSync(t.dir, { recursive: true, force: true, maxRetries: 3 })
}
