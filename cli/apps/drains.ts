import type { Command } from 'commander'
import { printList } from '../output.js'
import { api, appPath, withApp } from './common.js'

interface DrainsOut {
  drains: { id: string; url: string; created: string }[]
}

/** drains:add|list|remove: where else an app's log lines go. */
export function drainsTopic(program: Command): void {
  withApp(
    program.command('drains:add <url>').description("send the app's log lines to syslog://host:port, syslog+tls://host:port or https://host/path"),
  ).action(async (url: string, opts: { app?: string }) => {
    const res = await api().call<DrainsOut>('POST', appPath(opts, '/drains'), { url })
    const added = res.drains.find((d) => d.url === url.trim())
    console.log(`Added drain ${added?.id ?? ''} (${url.trim()}).`)
  })
  withApp(program.command('drains:list').description("an app's log drains"))
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; json?: boolean }) => {
      const res = await api().call<DrainsOut>('GET', appPath(opts, '/drains'))
      printList(res.drains, [{ key: 'id' }, { key: 'url' }, { key: 'created' }], { json: opts.json, empty: 'No drains.' }, res)
    })
  withApp(program.command('drains:remove <drain>').description('remove a log drain, by id or URL')).action(async (drain: string, opts: { app?: string }) => {
    await api().call('DELETE', appPath(opts, `/drains/${encodeURIComponent(drain)}`))
    console.log(`Removed ${drain}.`)
  })
}
