import type { Command } from 'commander'
import { CliError } from '../client.js'
import { printJson, printList } from '../output.js'
import { asOfLine, getAt, withAt } from './at.js'
import { api, appPath, withApp } from './common.js'

interface ReleaseBody {
  version: number
  image: string | null
  configKeys: string[]
  configHash: string
  by: string
  summary: string
  created: string
  config?: Record<string, string>
  rollbackOf: number | null
}

function version(v: string): string {
  if (!/^[vV]?[1-9][0-9]{0,8}$/.test(v)) throw new CliError('WHARF_INVALID', `not a release version: ${JSON.stringify(v)} (give vN or N)`)
  return v.replace(/^[vV]/, '')
}

/** releases:list|info|rollback and the shortcut rollback. */
export function releasesTopic(program: Command): void {
  withAt(withApp(program.command('releases:list').alias('releases').description("an app's releases, newest first")))
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; json?: boolean; at?: string }) => {
      const { body: res, asOf } = await getAt<{ releases: ReleaseBody[] }>(appPath(opts, '/releases'), opts.at)
      if (asOf && !opts.json) console.log(asOfLine(asOf))
      const rows = res.releases.map((r) => ({ ...r, version: `v${r.version}`, image: r.image ?? '-' }))
      printList(
        rows,
        [{ key: 'version' }, { key: 'created' }, { key: 'by' }, { key: 'image' }, { key: 'summary' }],
        { json: opts.json, empty: 'No releases.' },
        res,
      )
    })

  withApp(program.command('releases:info <version>').description('one release (vN), with its config'))
    .option('--json', 'print the API JSON')
    .action(async (v: string, opts: { app?: string; json?: boolean }) => {
      const r = await api().call<ReleaseBody>('GET', appPath(opts, `/releases/${version(v)}`))
      if (opts.json) return printJson(r)
      console.log(
        [
          `=== v${r.version}`,
          `created: ${r.created} by ${r.by}`,
          `summary: ${r.summary}`,
          `image:   ${r.image ?? '-'}`,
          `config:  ${r.configHash}`,
          ...Object.entries(r.config ?? {}).map(([k, val]) => `  ${k}=${val}`),
        ].join('\n'),
      )
    })

  withApp(
    program.command('releases:rollback [version]').alias('rollback').description("a new release with vN's image and config (default: the previous release)"),
  ).action(async (v: string | undefined, opts: { app?: string }) => {
    const r = await api().call<ReleaseBody>('POST', appPath(opts, '/releases/rollback'), v === undefined ? {} : { version: Number(version(v)) })
    console.log(`Rolled back to v${r.rollbackOf}: now v${r.version}.`)
  })
}
