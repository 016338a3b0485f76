import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { CliError } from '../client.js'
import { printJson, printList } from '../output.js'
import { api, appPath, withApp } from './common.js'

interface CertView {
  name: string
  commonName: string
  sans: string[]
  notAfter: string
  expired: boolean
  domains: string[]
}

/** Largest PEM file read, bytes (the API takes at most 64 KiB of chain and 16 KiB of key). */
const MAX_FILE_BYTES = 256 * 1024

function readPem(path: string, what: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new CliError('WHARF_INVALID', `cannot read the ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) throw new CliError('WHARF_INVALID', `${path} is too large to be a ${what}`)
  return text
}

function certPath(opts: { app?: string }, name: string, rest = ''): string {
  return appPath(opts, `/certs/${encodeURIComponent(name)}${rest}`)
}

function describe(c: CertView): string {
  return `${c.name} (${c.commonName || c.sans[0] || 'no name'}, expires ${c.notAfter.slice(0, 10)})`
}

/** certs:add|list|attach|detach|remove: HTTPS by SNI on the router's TLS port. */
export function certsTopic(program: Command): void {
  withApp(program.command('certs:add <certificate> <key>').description('add a TLS certificate (PEM chain, leaf first) and its private key'))
    .option('--name <name>', 'a name for it (default: from its host name)')
    .option('--json', 'print the API JSON')
    .action(async (certFile: string, keyFile: string, opts: { app?: string; name?: string; json?: boolean }) => {
      const body = { certificate: readPem(certFile, 'certificate'), key: readPem(keyFile, 'key'), ...(opts.name ? { name: opts.name } : {}) }
      const res = await api().call<{ cert: CertView }>('POST', appPath(opts, '/certs'), body)
      if (opts.json) return printJson(res)
      console.log(`Added ${describe(res.cert)}.`)
      console.log(`Attach it to a domain: wharf certs:attach ${res.cert.name} <domain>`)
    })
  withApp(program.command('certs:list').description("an app's TLS certificates and the domains each serves"))
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; json?: boolean }) => {
      const res = await api().call<{ certs: CertView[] }>('GET', appPath(opts, '/certs'))
      const rows = res.certs.map((c) => ({
        name: c.name,
        commonName: c.commonName,
        sans: c.sans.join(', '),
        expires: `${c.notAfter.slice(0, 10)}${c.expired ? ' (expired)' : ''}`,
        domains: c.domains.join(', '),
      }))
      printList(
        rows,
        [{ key: 'name' }, { key: 'commonName', title: 'common name' }, { key: 'sans', title: 'SANs' }, { key: 'expires' }, { key: 'domains' }],
        { json: opts.json, empty: 'No certificates.' },
        res,
      )
    })
  withApp(program.command('certs:attach <name> <domain>').description("serve HTTPS for one of the app's domains with the certificate"))
    .option('--json', 'print the API JSON')
    .action(async (name: string, domain: string, opts: { app?: string; json?: boolean }) => {
      const res = await api().call<{ cert: CertView }>('POST', certPath(opts, name, '/attach'), { domain })
      if (opts.json) return printJson(res)
      console.log(`Attached ${name} to ${domain}.`)
    })
  withApp(program.command('certs:detach <name> <domain>').description('stop serving HTTPS for the domain with the certificate'))
    .option('--json', 'print the API JSON')
    .action(async (name: string, domain: string, opts: { app?: string; json?: boolean }) => {
      const res = await api().call<{ cert: CertView }>('POST', certPath(opts, name, '/detach'), { domain })
      if (opts.json) return printJson(res)
      console.log(`Detached ${name} from ${domain}.`)
    })
  withApp(program.command('certs:remove <name>').description('remove a certificate (detaching it from its domains)'))
    .option('--json', 'print the API JSON')
    .action(async (name: string, opts: { app?: string; json?: boolean }) => {
      const res = await api().call<{ removed: CertView }>('DELETE', certPath(opts, name))
      if (opts.json) return printJson(res)
      const d = res.removed.domains
      console.log(`Removed ${name}${d.length ? ` (detached from ${d.join(', ')})` : ''}.`)
    })
}
