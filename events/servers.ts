/**
 * NATS server URLs as Wharf passes them around (`WHARF_NATS_URL`, a comma list): the platform's
 * user and password ride in the URL (`nats://wharf:<password>@127.0.0.1:14222`), as in a Postgres
 * URL. The nats.js client does not read them from there, so they are taken out and given as options;
 * `shown` is the list without them, for messages and logs.
 */
export interface NatsServers {
  servers: string[]
  user?: string
  pass?: string
  shown: string
}

export function natsServers(urls: string | string[]): NatsServers {
  const list = (typeof urls === 'string' ? urls.split(',') : urls).map((s) => s.trim()).filter(Boolean)
  let user: string | undefined
  let pass: string | undefined
  const servers = list.map((s) => {
    const m = /^([a-z]+:\/\/)([^@/]*)@(.*)$/i.exec(s)
    if (!m) return s
    const [name, password] = m[2]!.split(':', 2)
    // One user for all servers of a cluster: the first one named.
    user ??= decodeURIComponent(name ?? '')
    pass ??= password === undefined ? undefined : decodeURIComponent(password)
    return `${m[1]}${m[3]}`
  })
  return { servers, ...(user ? { user } : {}), ...(pass !== undefined ? { pass } : {}), shown: servers.join(',') }
}
