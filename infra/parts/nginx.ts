import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { answers, daemonPart } from '../daemon.js'
import type { InfraContext } from '../part.js'
import { execFileP, livePid, portOpen } from '../proc.js'

/** Debian's nginx package creates www-data; workers run as it, the master as root. */
const WORKER_USER = 'www-data'

/**
 * The base configuration: global settings, and a default server that answers 404 for any host the
 * router does not know. The router (later) writes its server blocks into conf.d/.
 */
export function baseConfig({ cfg, paths }: InfraContext): string {
  const t = paths.nginx.tmp
  return `# Written by Wharf's infra on every start; the router owns conf.d/.
daemon off;
worker_processes auto;
pid ${paths.nginx.pid};
error_log ${paths.nginx.log} warn;
user ${WORKER_USER};

events {
  worker_connections 4096;
}

http {
  access_log off;
  server_tokens off;
  client_body_temp_path ${join(t, 'body')};
  proxy_temp_path ${join(t, 'proxy')};
  fastcgi_temp_path ${join(t, 'fastcgi')};
  uwsgi_temp_path ${join(t, 'uwsgi')};
  scgi_temp_path ${join(t, 'scgi')};
  default_type text/plain;

  include ${paths.nginx.confd}/*.conf;

  # deferred: a connection is accepted once its request has arrived, and so is read at once. A
  # worker that a reload retires closes the connections it accepted but has not read yet: without
  # it a client connecting during a reload could see its new connection closed unanswered.
  server {
    listen 127.0.0.1:${cfg.ports.router} default_server deferred;
    server_name _;
    location / {
      return 404 "no app answers at this host\\n";
    }
  }

  # HTTPS: the router adds a server per attached certificate (by SNI); any other name is refused
  # in the handshake, since there is no certificate to answer it with.
  server {
    listen 127.0.0.1:${cfg.ports.routerTls} ssl default_server deferred;
    server_name _;
    ssl_reject_handshake on;
  }
}
`
}

async function version(): Promise<string | undefined> {
  const { stderr } = await execFileP('nginx', ['-v'])
  return stderr.match(/nginx\/(\S+)/)?.[1]
}

/** nginx with its own config dir under $WHARF_HOME/nginx, on 127.0.0.1:<router port>. */
export const nginx = daemonPart({
  // Workers of a master killed with -9 keep serving and keep the ports: stopped before a restart.
  orphanedWorkers: true,
  name: 'nginx',
  address: ({ cfg }) => `http://127.0.0.1:${cfg.ports.router}, https://127.0.0.1:${cfg.ports.routerTls}`,
  pidfile: ({ paths }) => paths.nginx.pid,
  log: ({ paths }) => paths.nginx.log,
  ports: ({ cfg }) => [
    { port: cfg.ports.router, env: 'WHARF_ROUTER_PORT' },
    { port: cfg.ports.routerTls, env: 'WHARF_ROUTER_TLS_PORT' },
  ],
  // The default server answers 404 for a host no app has.
  healthy: ({ cfg }) => answers(`http://127.0.0.1:${cfg.ports.router}/`, 404, { host: 'wharf-infra-probe.invalid' }),
  describe: async () => ({ version: await version() }),
  async prepare(ctx) {
    const { paths } = ctx
    const { stdout: uidOut } = await execFileP('id', ['-u', WORKER_USER])
    const { stdout: gidOut } = await execFileP('id', ['-g', WORKER_USER])
    for (const d of [paths.nginx.confd, paths.nginx.tmp, paths.logs]) mkdirSync(d, { recursive: true })
    for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      const d = join(paths.nginx.tmp, sub)
      mkdirSync(d, { recursive: true })
      chownSync(d, Number(uidOut.trim()), Number(gidOut.trim()))
    }
    writeFileSync(paths.nginx.conf, baseConfig(ctx))
    // -e: errors before the config is read go to our log, not /var/log/nginx (which may not exist).
    const args = ['-e', paths.nginx.log, '-p', paths.nginx.dir, '-c', paths.nginx.conf]
    try {
      await execFileP('nginx', [...args, '-t', '-q'])
    } catch (err) {
      throw new Error(`nginx: configuration test failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`)
    }
    return { cmd: 'nginx', args, logFile: join(paths.logs, 'nginx-stdout.log'), pidfile: paths.nginx.pid }
  },
  // A running nginx whose base config an older checkout wrote: written anew, checked, reloaded.
  async refresh(ctx) {
    const { paths } = ctx
    const want = baseConfig(ctx)
    let have = ''
    try {
      have = readFileSync(paths.nginx.conf, 'utf8')
    } catch {
      // None yet: write it.
    }
    if (have === want) return false
    // The HTTPS port is new to a config written before it existed: it must be free.
    const tls = ctx.cfg.ports.routerTls
    if (!have.includes(`listen 127.0.0.1:${tls} `) && (await portOpen(tls)))
      throw new Error(`nginx: port ${tls} is already taken by another process (set WHARF_ROUTER_TLS_PORT)`)
    writeFileSync(paths.nginx.conf, want)
    try {
      await execFileP('nginx', ['-e', paths.nginx.log, '-p', paths.nginx.dir, '-c', paths.nginx.conf, '-t', '-q'])
    } catch (err) {
      writeFileSync(paths.nginx.conf, have)
      throw new Error(
        `nginx: the new configuration fails its test (the old one keeps serving): ${(err as { stderr?: string }).stderr ?? (err as Error).message}`,
      )
    }
    const pid = livePid(paths.nginx.pid)
    if (pid) process.kill(pid, 'SIGHUP')
    return true
  },
  // SIGQUIT: graceful, lets in-flight requests finish.
  stopSignal: 'SIGQUIT',
  startTimeoutMs: 15_000,
})
