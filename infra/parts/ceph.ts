import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { S3Config } from '../../core/config.js'
import { ensureBuckets } from '../../core/objectstore/s3.js'
import { answers } from '../daemon.js'
import type { InfraContext, Part, PartStatus } from '../part.js'
import { execFileP, livePid, portOpen, startDaemon, stopPidfile, tail, waitUntil } from '../proc.js'

/** The one monitor's id, the one OSD's id, the gateway's client name, Wharf's S3 user. */
const MON_ID = 'a'
const OSD_ID = 0
const RGW_NAME = 'client.rgw.wharf'
const S3_USER = 'wharf'
/** The OSD's bluestore block file: sparse, so it takes only what is written. */
const OSD_BLOCK_BYTES = 10 * 1024 ** 3
/** Every `ceph` / `radosgw-admin` call is bounded: with a dead OSD or mon they wait forever. */
const CEPH_TIMEOUT_MS = 20_000

/**
 * ceph.conf for a one-node cluster on 127.0.0.1 (see INFRA-NOTES, Ceph). Written on every start, so a
 * moved S3 or mon port takes effect; the fsid stays the one the cluster was made with.
 */
export function cephConf({ cfg, paths }: InfraContext, fsid: string): string {
  const c = paths.ceph
  return `# Written by Wharf's infra on every start.
[global]
fsid = ${fsid}
mon_host = [v2:127.0.0.1:${cfg.ports.cephMon}]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_ipv4 = true
run_dir = ${c.run}
log_file = ${paths.logs}/ceph-$name.log
mon_cluster_log_file = ${paths.logs}/ceph-cluster.log
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
# One OSD: pools of one replica, placement across OSDs rather than hosts, few PGs, no autoscaler.
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
# The disk may well be less than 30 % free on a development machine.
mon_data_avail_warn = 2
mon_data_avail_crit = 1

[mon]
mon_data = ${c.mon}/$id
log_file = ${c.monLog}
# The default 1 s makes the first start ~12 s.
paxos_propose_interval = 0.05

[osd]
osd_data = ${c.osd}/$id
log_file = ${c.osdLog}
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = ${OSD_BLOCK_BYTES}
# A clean stop flushes and unmounts bluestore rather than exiting at once.
osd_fast_shutdown = false
# The OSD opens and closes the block file several times at start, each close waiting out one aio
# poll (default 250 ms); each op shard adds one more: few shards, shorter polls.
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
bdev_aio_poll_ms = 20
# A gateway killed with -9 leaves its watches on the control objects; until they time out every
# metadata change (a bucket made) waits on them: 30 s by default. Gateways ping their watches every
# objecter tick (1 s below), so 5 s is plenty.
osd_client_watch_timeout = 5

[client.admin]
keyring = ${c.adminKeyring}

[${RGW_NAME}]
keyring = ${c.rgw}/keyring
rgw_data = ${c.rgw}
log_file = ${c.rgwLog}
# Without tcp_nodelay each S3 request stalls ~40 ms.
rgw_frontends = beast endpoint=127.0.0.1:${cfg.ports.s3} tcp_nodelay=1
# After an OSD restart the gateway's requests wait for its next objecter tick (default 5 s) to
# learn the new OSD address: a kill -9 of the OSD then costs ~4 s of stalled S3 requests, not ~0.4 s.
objecter_tick_interval = 1
`
}

async function run(cmd: string, args: string[], timeoutMs = CEPH_TIMEOUT_MS): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 })
    return stdout
  } catch (err) {
    const e = err as Error & { killed?: boolean; stderr?: string }
    const why = e.killed ? `no answer within ${timeoutMs / 1000} s` : e.stderr?.trim().split('\n').slice(-3).join(' ') || e.message
    throw new Error(`${cmd} ${args.filter((a) => !a.includes('/')).join(' ')}: ${why}`, { cause: err })
  }
}

/** `ceph ...` as client.admin against Wharf's cluster. */
const cephCli = ({ paths }: InfraContext, args: string[], timeoutMs = CEPH_TIMEOUT_MS) =>
  run('ceph', ['-c', paths.ceph.conf, '--connect-timeout', String(Math.ceil(timeoutMs / 1000)), ...args], timeoutMs)
const radosgwAdmin = ({ paths }: InfraContext, args: string[]) => run('radosgw-admin', ['-c', paths.ceph.conf, '-n', 'client.admin', ...args])

function readFsid({ paths }: InfraContext): string {
  return readFileSync(paths.ceph.fsid, 'utf8').trim()
}

/**
 * The daemons run as root like the rest of infra, with no `--setuser`/`--setgroup` (Debian's systemd
 * units pass `ceph`): the mkfs steps run as root too, so every file under $WHARF_HOME/ceph has one owner.
 * `-f`: in the foreground (so the recorded pid is the daemon's), logging to its log_file.
 */
function startMon(ctx: InfraContext): void {
  const c = ctx.paths.ceph
  startDaemon({ cmd: 'ceph-mon', args: ['-c', c.conf, '-f', '-i', MON_ID], logFile: c.monLog, pidfile: c.monPid })
}
function startOsd(ctx: InfraContext): void {
  const c = ctx.paths.ceph
  startDaemon({ cmd: 'ceph-osd', args: ['-c', c.conf, '-f', '-i', String(OSD_ID)], logFile: c.osdLog, pidfile: c.osdPid })
}
function startRgw(ctx: InfraContext): void {
  const c = ctx.paths.ceph
  startDaemon({ cmd: 'radosgw', args: ['-c', c.conf, '-f', '-n', RGW_NAME], logFile: c.rgwLog, pidfile: c.rgwPid })
}

/** Stops the gateway, then the OSD, then the monitor (the order that lets each finish its writes). */
async function stopDaemons({ paths }: InfraContext): Promise<boolean> {
  const rgw = await stopPidfile(paths.ceph.rgwPid, { timeoutMs: 20_000 })
  const osd = await stopPidfile(paths.ceph.osdPid, { timeoutMs: 60_000 })
  const mon = await stopPidfile(paths.ceph.monPid, { timeoutMs: 20_000 })
  return rgw || osd || mon
}

/**
 * First start: keys, monmap and the monitor's store. Any half-made cluster from an interrupted first
 * start is removed first (the `created` marker is written only once the OSD is made, before any
 * object can exist).
 */
async function createMon(ctx: InfraContext): Promise<void> {
  const c = ctx.paths.ceph
  if (existsSync(join(c.osd, String(OSD_ID), 'ready'))) {
    // An OSD was made, so objects may exist: never wipe that on a guess.
    throw new Error(
      `store: ${c.dir} has an OSD but no ${c.created} marker; refusing to make a new cluster over it (write the marker to keep it, or delete ${c.dir})`,
    )
  }
  ctx.say('store: creating the Ceph cluster (first start)')
  await stopDaemons(ctx)
  rmSync(c.dir, { recursive: true, force: true })
  for (const d of [c.dir, join(c.mon, MON_ID), join(c.osd, String(OSD_ID)), c.rgw, c.run, ctx.paths.logs]) mkdirSync(d, { recursive: true })
  const fsid = randomUUID()
  writeFileSync(c.fsid, `${fsid}\n`)
  writeFileSync(c.conf, cephConf(ctx, fsid))
  const keyring = (file: string, name: string, caps: string[]) => run('ceph-authtool', ['--create-keyring', file, '--gen-key', '-n', name, ...caps])
  await keyring(c.monKeyring, 'mon.', ['--cap', 'mon', 'allow *'])
  await keyring(c.adminKeyring, 'client.admin', ['--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *', '--cap', 'mds', 'allow *'])
  await keyring(join(c.osd, String(OSD_ID), 'keyring'), `osd.${OSD_ID}`, [
    '--cap',
    'mon',
    'allow profile osd',
    '--cap',
    'mgr',
    'allow profile osd',
    '--cap',
    'osd',
    'allow *',
  ])
  await keyring(join(c.rgw, 'keyring'), RGW_NAME, ['--cap', 'mon', 'allow rw', '--cap', 'osd', 'allow rwx'])
  // The monitor starts with every key in its auth database: no `ceph auth add` round trips later.
  for (const k of [c.adminKeyring, join(c.osd, String(OSD_ID), 'keyring'), join(c.rgw, 'keyring')]) {
    await run('ceph-authtool', [c.monKeyring, '--import-keyring', k])
  }
  await run('monmaptool', ['--create', '--fsid', fsid, '--addv', MON_ID, `[v2:127.0.0.1:${ctx.cfg.ports.cephMon}]`, c.monmap])
  await run('ceph-mon', ['-c', c.conf, '--mkfs', '-i', MON_ID, '--monmap', c.monmap, '--keyring', c.monKeyring], 60_000)
  writeFileSync(c.monPortFile, `${ctx.cfg.ports.cephMon}\n`)
}

/** Registers the OSD with the monitor and makes its bluestore (the sparse block file). */
async function createOsd(ctx: InfraContext): Promise<void> {
  const c = ctx.paths.ceph
  const uuid = randomUUID()
  await cephCli(ctx, ['osd', 'new', uuid, String(OSD_ID)])
  // Wharf runs no mgr (S3 does not need one): its absence is no health warning here.
  await cephCli(ctx, ['health', 'mute', 'MGR_DOWN', '--sticky'])
  await run('ceph-osd', ['-c', c.conf, '-i', String(OSD_ID), '--mkfs', '--osd-uuid', uuid], 120_000)
  writeFileSync(c.created, `${new Date().toISOString()}\n`)
}

/** The monmap holds the monitor's address: when WHARF_CEPH_MON_PORT moved since, rewrite it (mon stopped). */
async function moveMonPort(ctx: InfraContext): Promise<void> {
  const c = ctx.paths.ceph
  const was = existsSync(c.monPortFile) ? Number(readFileSync(c.monPortFile, 'utf8').trim()) : ctx.cfg.ports.cephMon
  if (was === ctx.cfg.ports.cephMon) return
  ctx.say(`store: moving the Ceph monitor from port ${was} to ${ctx.cfg.ports.cephMon}`)
  await run('ceph-mon', ['-c', c.conf, '-i', MON_ID, '--extract-monmap', c.monmap])
  await run('monmaptool', ['--rm', MON_ID, c.monmap])
  await run('monmaptool', ['--addv', MON_ID, `[v2:127.0.0.1:${ctx.cfg.ports.cephMon}]`, c.monmap])
  await run('ceph-mon', ['-c', c.conf, '-i', MON_ID, '--inject-monmap', c.monmap])
  writeFileSync(c.monPortFile, `${ctx.cfg.ports.cephMon}\n`)
}

/**
 * True when the monitor has the running OSD process up. After a kill -9 the osdmap may still show
 * the dead instance up: the address nonce (the daemon's pid) tells them apart. A gateway started
 * against the stale map stalls ~10 s sending to the dead instance.
 */
async function osdUp(ctx: InfraContext): Promise<boolean> {
  const pid = livePid(ctx.paths.ceph.osdPid)
  if (!pid) throw new Error(`ceph-osd exited\n${tail(ctx.paths.ceph.osdLog, 5)}`)
  type Osd = { osd: number; up: number; public_addrs?: { addrvec?: { nonce: number }[] } }
  const dump = JSON.parse(await cephCli(ctx, ['osd', 'dump', '--format', 'json'], 5_000)) as { osds?: Osd[] }
  const osd = dump.osds?.find((o) => o.osd === OSD_ID)
  return osd?.up === 1 && osd.public_addrs?.addrvec?.[0]?.nonce === pid
}

/** Wharf's S3 user's keys: made once with `radosgw-admin`, kept in $WHARF_HOME/secrets/s3.json (mode 600). */
async function ensureUser(ctx: InfraContext): Promise<void> {
  const file = ctx.paths.ceph.s3Keys
  if (existsSync(file)) return
  type User = { keys?: { user: string; access_key: string; secret_key: string }[] }
  let user: User
  try {
    user = JSON.parse(await radosgwAdmin(ctx, ['user', 'info', `--uid=${S3_USER}`])) as User
  } catch {
    user = JSON.parse(await radosgwAdmin(ctx, ['user', 'create', `--uid=${S3_USER}`, '--display-name=Wharf'])) as User
  }
  const key = user.keys?.find((k) => k.user === S3_USER)
  if (!key) throw new Error(`store: radosgw-admin made user ${S3_USER} without S3 keys`)
  mkdirSync(ctx.paths.secrets, { recursive: true, mode: 0o700 })
  writeFileSync(file, `${JSON.stringify({ accessKey: key.access_key, secretKey: key.secret_key }, null, 2)}\n`, { mode: 0o600 })
}

/**
 * The S3 endpoint and keys the platform uses: the operator's when external, else Wharf's own
 * gateway with the keys from $WHARF_HOME/secrets/s3.json (there once the store has started).
 */
export function s3Settings({ cfg, paths }: InfraContext): S3Config {
  if (cfg.s3.external) return cfg.s3
  let keys: { accessKey: string; secretKey: string }
  try {
    keys = JSON.parse(readFileSync(paths.ceph.s3Keys, 'utf8')) as typeof keys
  } catch (err) {
    throw new Error(`the store's S3 keys are not in ${paths.ceph.s3Keys} yet: start the store first (make up)`, { cause: err })
  }
  return { ...cfg.s3, accessKey: keys.accessKey, secretKey: keys.secretKey }
}

async function cephStatus(ctx: InfraContext): Promise<PartStatus> {
  const { paths } = ctx
  const address = ctx.cfg.s3.endpoint
  const pid = livePid(paths.ceph.rgwPid)
  const mon = livePid(paths.ceph.monPid)
  const osd = livePid(paths.ceph.osdPid)
  const daemons = `mon ${mon ? `pid ${mon}` : 'down'}, osd ${osd ? `pid ${osd}` : 'down'}`
  if (!pid || !mon || !osd) return { up: false, address, ...(pid ? { pid } : {}), detail: `radosgw ${pid ? 'up' : 'down'}, ${daemons}` }
  try {
    const [up, version, health] = await Promise.all([
      answers(`${address}/`),
      run('ceph', ['--version'], 5_000).then((v) => /ceph version (\S+)/.exec(v)?.[1]),
      cephCli(ctx, ['health', 'detail'], 5_000).then((h) =>
        h
          .trim()
          .split('\n')
          .map((l) => l.trim())
          .join('; '),
      ),
    ])
    return { up, address, pid, ...(version ? { version } : {}), detail: `${health}; ${daemons}` }
  } catch (err) {
    return { up: false, address, pid, detail: `${(err as Error).message}; ${daemons}` }
  }
}

/**
 * The store: a one-node Ceph under $WHARF_HOME/ceph (one monitor, one bluestore OSD on a sparse
 * file, radosgw on 127.0.0.1:<s3 port>) with Wharf's S3 user and buckets; or, when WHARF_S3_ENDPOINT
 * names an external S3, only a check of that endpoint and its buckets. `start` also recovers: a
 * daemon that died (even by kill -9) is started again on the data it left.
 */
export const ceph: Part = {
  name: 'store',
  processes: ({ cfg, paths }) => (cfg.s3.external ? [] : [livePid(paths.ceph.monPid), livePid(paths.ceph.osdPid), livePid(paths.ceph.rgwPid)]),
  async status(ctx) {
    if (!ctx.cfg.s3.external) return cephStatus(ctx)
    try {
      await ensureBuckets(ctx.cfg.s3, { create: false })
      return { up: true, address: ctx.cfg.s3.endpoint, detail: 'external S3' }
    } catch (err) {
      return { up: false, address: ctx.cfg.s3.endpoint, detail: (err as Error).message }
    }
  },
  async start(ctx) {
    if (ctx.cfg.s3.external) {
      await ensureBuckets(ctx.cfg.s3)
      return 'running'
    }
    const { cfg, paths } = ctx
    const c = paths.ceph
    const fresh = !existsSync(c.created)
    if (fresh) await createMon(ctx)
    mkdirSync(c.run, { recursive: true })
    writeFileSync(c.conf, cephConf(ctx, readFsid(ctx)))
    const logs = () => `\n${tail(c.monLog, 5)}\n${tail(c.osdLog, 5)}\n${tail(c.rgwLog, 5)}`
    let started = false
    try {
      if (!livePid(c.monPid)) {
        if (await portOpen(cfg.ports.cephMon)) throw new Error(`store: port ${cfg.ports.cephMon} is already taken by another process (set WHARF_CEPH_MON_PORT)`)
        await moveMonPort(ctx)
        startMon(ctx)
        started = true
      }
      await waitUntil('Ceph monitor', () => portOpen(cfg.ports.cephMon), 30_000)
      if (fresh) await createOsd(ctx)
      if (!livePid(c.osdPid)) {
        startOsd(ctx)
        started = true
      }
      await waitUntil('Ceph OSD', () => osdUp(ctx), 60_000, 200)
      if (!livePid(c.rgwPid)) {
        if (await portOpen(cfg.ports.s3)) throw new Error(`store: port ${cfg.ports.s3} is already taken by another process (set WHARF_S3_PORT)`)
        startRgw(ctx)
        started = true
      }
      await waitUntil('radosgw', () => answers(`${cfg.s3.endpoint}/`), 60_000)
      await ensureUser(ctx)
    } catch (err) {
      throw new Error(`${(err as Error).message}${logs()}`, { cause: err })
    }
    await ensureBuckets(s3Settings(ctx))
    return started ? 'started' : 'running'
  },
  async stop(ctx) {
    if (ctx.cfg.s3.external) return 'not running'
    return (await stopDaemons(ctx)) ? 'stopped' : 'not running'
  },
}
