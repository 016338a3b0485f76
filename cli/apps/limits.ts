import type { Command } from 'commander'
import { CliError } from '../client.js'
import { printJson, table } from '../output.js'
import { api, appPath, pairs, withApp } from './common.js'

interface LimitsBody {
  memory: Record<string, string>
  cpu: Record<string, number>
}

function print(l: LimitsBody): void {
  const types = [...new Set([...Object.keys(l.memory), ...Object.keys(l.cpu)])].sort()
  console.log(
    types.length
      ? table(
          types.map((t) => ({ type: t, memory: l.memory[t] ?? '-', cpu: l.cpu[t] ?? '-' })),
          [{ key: 'type' }, { key: 'memory' }, { key: 'cpu' }],
        )
      : 'No limits.',
  )
}

/** limits:list|set|unset: memory (default) or --cpu, per process type. */
export function limitsTopic(program: Command): void {
  withApp(program.command('limits:list').description("an app's memory and CPU limits"))
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; json?: boolean }) => {
      const l = await api().call<LimitsBody>('GET', appPath(opts, '/limits'))
      if (opts.json) return printJson(l)
      print(l)
    })

  withApp(program.command('limits:set <pairs...>').description('set limits: type=512M ... (memory), or with --cpu type=0.5 ... (makes a release)'))
    .option('--cpu', 'CPU limits (in CPUs) instead of memory')
    .action(async (args: string[], opts: { app?: string; cpu?: boolean }) => {
      const given = pairs(args, 'type=value', (m) => new CliError('WHARF_INVALID', m))
      let body: Partial<LimitsBody>
      if (opts.cpu) {
        const cpu: Record<string, number> = {}
        for (const [t, v] of Object.entries(given)) {
          if (!/^[0-9]*\.?[0-9]+$/.test(v)) throw new CliError('WHARF_INVALID', `${t}=${v}: a CPU limit is a number of CPUs (0.5)`)
          cpu[t] = Number(v)
        }
        body = { cpu }
      } else body = { memory: Object.fromEntries(Object.entries(given).map(([t, v]) => [t, v.toUpperCase()])) }
      print(await api().call<LimitsBody>('POST', appPath(opts, '/limits'), body))
    })

  withApp(program.command('limits:unset <types...>').description('remove memory limits of process types (or CPU limits with --cpu)'))
    .option('--cpu', 'CPU limits instead of memory')
    .action(async (types: string[], opts: { app?: string; cpu?: boolean }) => {
      print(await api().call<LimitsBody>('POST', appPath(opts, '/limits/unset'), opts.cpu ? { cpu: types } : { memory: types }))
    })
}
