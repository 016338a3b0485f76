import type { Command } from 'commander'
import { printList } from '../output.js'
import { asOfLine, getAt, withAt } from './at.js'
import { api, appPath, withApp } from './common.js'

/** domains:add|list|remove. */
export function domainsTopic(program: Command): void {
  withApp(program.command('domains:add <domain>').description('route a custom domain to the app')).action(async (domain: string, opts: { app?: string }) => {
    await api().call('POST', appPath(opts, '/domains'), { domain })
    console.log(`Added ${domain}.`)
  })
  withAt(withApp(program.command('domains:list').description("an app's custom domains")))
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; json?: boolean; at?: string }) => {
      const { body: res, asOf } = await getAt<{ domains: Record<string, unknown>[] }>(appPath(opts, '/domains'), opts.at)
      if (asOf && !opts.json) console.log(asOfLine(asOf))
      printList(res.domains, [{ key: 'domain' }, { key: 'created' }], { json: opts.json, empty: 'No custom domains.' }, res)
    })
  withApp(program.command('domains:remove <domain>').description('remove a custom domain')).action(async (domain: string, opts: { app?: string }) => {
    await api().call('DELETE', appPath(opts, `/domains/${encodeURIComponent(domain)}`))
    console.log(`Removed ${domain}.`)
  })
}
