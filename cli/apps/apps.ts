import type { Command } from 'commander'
import { appFromGitRemote } from '../app.js'
import { CliError } from '../client.js'
import { printJson, printList } from '../output.js'
import { asOfLine, getAt, withAt } from './at.js'
import { api, appPath, withApp } from './common.js'
import { connectRepo } from './git.js'

export interface AppInfo {
  name: string
  owner: string
  created: string
  url: string
  maintenance: boolean
  release: { version: number; image: string | null; created: string; summary: string } | null
  domains: string[]
  formation: Record<string, number>
  collaborators: string[]
}

function printInfo(a: AppInfo): void {
  const lines = [
    `=== ${a.name}`,
    `owner:         ${a.owner}`,
    `url:           ${a.url}`,
    `created:       ${a.created}`,
    `release:       ${a.release ? `v${a.release.version}${a.release.image ? ` (${a.release.image})` : ''}` : 'none'}`,
    `maintenance:   ${a.maintenance ? 'on' : 'off'}`,
    `domains:       ${a.domains.join(', ') || '-'}`,
    `formation:     ${
      Object.entries(a.formation)
        .map(([t, n]) => `${t}=${n}`)
        .join(' ') || '-'
    }`,
    `collaborators: ${a.collaborators.join(', ') || '-'}`,
  ]
  console.log(lines.join('\n'))
}

/** apps:create|list|info|destroy|transfer|open and the shortcuts create, destroy, info. */
export function appsTopic(program: Command): void {
  program
    .command('apps:create [name]')
    .alias('create')
    .description('create an app (a name is generated when none is given) and add the git remote `wharf`')
    .option('--no-remote', 'do not add the git remote `wharf`')
    .option('--builder-port <port>', "the builder's port for the git remote (default: the controller says)", process.env.WHARF_BUILDER_PORT)
    .option('--json', 'print the API JSON')
    .action(async (name: string | undefined, opts: { remote: boolean; builderPort?: string; json?: boolean }) => {
      if (opts.builderPort !== undefined && !/^[0-9]{1,5}$/.test(opts.builderPort)) throw new CliError('WHARF_INVALID', `not a port: ${opts.builderPort}`)
      const app = await api().call<AppInfo>('POST', '/v1/apps', name ? { name } : {})
      if (opts.json) return printJson(app)
      console.log(`Created ${app.name}: ${app.url}`)
      if (opts.remote) await connectRepo(app.name, opts.builderPort)
    })

  program
    .command('apps:list')
    .description('the apps you may see')
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const res = await api().call<{ apps: AppInfo[] }>('GET', '/v1/apps')
      printList(
        res.apps as unknown as Record<string, unknown>[],
        [{ key: 'name' }, { key: 'owner' }, { key: 'url' }, { key: 'created' }],
        { json: opts.json, empty: 'No apps: create one with `wharf apps:create`.' },
        res,
      )
    })

  withAt(withApp(program.command('apps:info').alias('info').description("an app's owner, URL, release, domains and formation")))
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; json?: boolean; at?: string }) => {
      const { body: a, asOf } = await getAt<AppInfo>(appPath(opts), opts.at)
      if (opts.json) return printJson(a)
      if (asOf) console.log(asOfLine(asOf))
      printInfo(a)
    })

  withApp(program.command('apps:destroy').alias('destroy').description('destroy an app, for good (owner or admin)'))
    .requiredOption('--confirm <app>', "the app's name, to confirm")
    .action(async (opts: { app?: string; confirm: string }) => {
      // -a, else the git remote's app, else the confirmed name (Deis: `apps:destroy --confirm <app>`).
      const app = opts.app ?? appFromGitRemote() ?? opts.confirm
      await api().call('DELETE', appPath({ app }), { confirm: opts.confirm })
      console.log(`Destroyed ${app}.`)
    })

  withApp(program.command('apps:transfer <user>').description('give an app to another user (owner or admin)')).action(
    async (user: string, opts: { app?: string }) => {
      const a = await api().call<AppInfo>('POST', appPath(opts, '/transfer'), { owner: user })
      console.log(`Transferred ${a.name} to ${a.owner}.`)
    },
  )

  withApp(program.command('apps:open').description("print an app's URL")).action(async (opts: { app?: string }) => {
    const a = await api().call<AppInfo>('GET', appPath(opts))
    console.log(a.url)
  })
}
