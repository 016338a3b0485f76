import type { Command } from 'commander'
import { printJson } from '../output.js'
import { api, appPath, withApp } from './common.js'

/** maintenance:on|off|info. */
export function maintenanceTopic(program: Command): void {
  for (const [verb, enabled] of [
    ['on', true],
    ['off', false],
  ] as const) {
    withApp(program.command(`maintenance:${verb}`).description(`turn maintenance mode ${verb}`)).action(async (opts: { app?: string }) => {
      await api().call('POST', appPath(opts, '/maintenance'), { enabled })
      console.log(`Maintenance mode is ${verb}.`)
    })
  }
  withApp(program.command('maintenance:info').description('whether maintenance mode is on'))
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; json?: boolean }) => {
      const res = await api().call<{ enabled: boolean }>('GET', appPath(opts, '/maintenance'))
      if (opts.json) return printJson(res)
      console.log(`Maintenance mode is ${res.enabled ? 'on' : 'off'}.`)
    })
}
