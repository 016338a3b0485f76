import type { Command } from 'commander'
import { CliError } from '../client.js'
import { sendAndWait, withWait, type WaitOptions } from '../follow.js'
import { printJson, printList } from '../output.js'
import type { PsView } from '../../services/controller/routes/ps.js'
import { placementKey } from '../../domain/runtime/placement.js'
import { age } from './builds.js'
import { asOfLine, getAt, withAt } from './at.js'
import { api, appPath, pairs, withApp } from './common.js'

/** ps:list (ps), ps:scale (scale), ps:restart. */
export function psTopic(program: Command): void {
  withAt(withApp(program.command('ps:list').alias('ps').description("an app's formation and processes: type.number, release, state, since")))
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; json?: boolean; at?: string }) => {
      const { body: res, asOf } = await getAt<{ formation: Record<string, number>; processes: PsView[] }>(appPath(opts, '/ps'), opts.at)
      if (opts.json) return printJson(res)
      if (asOf) console.log(asOfLine(asOf))
      const f = Object.entries(res.formation).map(([t, n]) => `${t}=${n}`)
      console.log(`=== formation: ${f.join(' ') || '(none)'}`)
      // Under --at, "since" counts back from that moment.
      const now = asOf ? Date.parse(asOf.time) : Date.now()
      const rows = res.processes.map((p) => ({
        process: p.number === null ? p.type : `${p.type}.${p.number}`,
        release: `v${p.release}`,
        state: p.state === 'crashed' && p.exitCode !== null ? `crashed (exit ${p.exitCode})` : p.state,
        since: age(p.since, now),
        port: p.port ?? '',
        container: p.container,
      }))
      printList(rows, [{ key: 'process' }, { key: 'release' }, { key: 'state' }, { key: 'since' }, { key: 'port' }, { key: 'container' }], {
        empty: 'No processes running.',
      })
    })

  withWait(
    withApp(program.command('ps:scale <pairs...>').alias('scale').description('scale process types: type=N ... (0..100); waits until the router serves them')),
  )
    .option(
      '--constraint <expr>',
      'Swarm placement constraint for the types scaled, e.g. node.labels.zone==a (repeatable; kept as WHARF_PLACEMENT_<TYPE>, which makes a release)',
      collect,
      [] as string[],
    )
    .action(async (args: string[], opts: WaitOptions & { constraint: string[] }) => {
      const wanted = pairs(args, 'type=N', (m) => new CliError('WHARF_INVALID', m))
      const formation: Record<string, number> = {}
      for (const [t, n] of Object.entries(wanted)) {
        if (!/^[0-9]{1,3}$/.test(n)) throw new CliError('WHARF_INVALID', `${t}=${n}: N must be a number 0..100`)
        formation[t] = Number(n)
      }
      // The constraint is the app setting WHARF_PLACEMENT_<TYPE> (the controller checks it): set first,
      // so that a refused constraint changes nothing, and the scaled tasks are placed by it.
      const placement = opts.constraint.length ? Object.fromEntries(Object.keys(formation).map((t) => [placementKey(t), opts.constraint.join(';')])) : undefined
      const res = await sendAndWait(api(), opts, async (requestId) => {
        if (placement) await api().call('POST', appPath(opts, '/config'), { values: placement }, { requestId })
        return api().call<{ formation: Record<string, number> }>('POST', appPath(opts, '/formation'), formation, { requestId })
      })
      if (placement)
        console.log(
          `Placement: ${Object.entries(placement)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`,
        )
      console.log(
        `Scaled: ${Object.entries(res.formation)
          .map(([t, n]) => `${t}=${n}`)
          .join(' ')}`,
      )
    })

  withWait(
    withApp(
      program
        .command('ps:restart [type]')
        .description("restart an app's processes (of one type, or all): new ones start together, old ones drain; waits until the router serves the new ones"),
    ),
  ).action(async (type: string | undefined, opts: WaitOptions) => {
    const res = await sendAndWait(api(), opts, (requestId) =>
      api().call<{ restarting: string[] }>('POST', appPath(opts, '/restart'), type ? { type } : {}, { requestId }),
    )
    console.log(res.restarting.length ? `Restarting ${res.restarting.join(', ')}, one process at a time.` : 'Nothing to restart: no processes are scaled up.')
  })
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}
