import type { Command } from 'commander'
import { printJson } from '../output.js'
import { CliError } from '../client.js'
import { asOfLine, getAt, withAt } from './at.js'
import { api, appPath, withApp } from './common.js'

/** perms:list|create|delete: collaborators on an app, or with --admin the platform's admins. */
export function permsTopic(program: Command): void {
  withAt(withApp(program.command('perms:list').description("an app's owner and collaborators (with --admin: the admins)")))
    .option('--admin', "list the platform's admins")
    .option('--json', 'print the API JSON')
    .action(async (opts: { app?: string; admin?: boolean; json?: boolean; at?: string }) => {
      if (opts.admin && opts.at !== undefined) throw new CliError('WHARF_INVALID', '--at goes with an app, not with --admin')
      if (opts.admin) {
        const res = await api().call<unknown>('GET', '/v1/admins')
        if (opts.json) return printJson(res)
        const list = Array.isArray(res) ? res : ((res as { admins?: unknown[] }).admins ?? [])
        console.log(list.map((a) => (typeof a === 'string' ? a : (a as { username: string }).username)).join('\n') || 'No admins.')
        return
      }
      const { body: res, asOf } = await getAt<{ owner: string; collaborators: string[] }>(appPath(opts, '/perms'), opts.at)
      if (opts.json) return printJson(res)
      if (asOf) console.log(asOfLine(asOf))
      console.log([`owner: ${res.owner}`, ...res.collaborators.map((u) => `collaborator: ${u}`)].join('\n'))
    })

  withApp(program.command('perms:create <user>').description('share the app with a user (with --admin: make the user an admin)'))
    .option('--admin', 'grant admin instead')
    .action(async (user: string, opts: { app?: string; admin?: boolean }) => {
      if (opts.admin) {
        await api().call('PUT', `/v1/admins/${encodeURIComponent(user)}`)
        return console.log(`${user} is an admin.`)
      }
      await api().call('POST', appPath(opts, '/perms'), { username: user })
      console.log(`Shared with ${user}.`)
    })

  withApp(program.command('perms:delete <user>').description('stop sharing the app with a user (with --admin: revoke admin)'))
    .option('--admin', 'revoke admin instead')
    .action(async (user: string, opts: { app?: string; admin?: boolean }) => {
      if (opts.admin) {
        await api().call('DELETE', `/v1/admins/${encodeURIComponent(user)}`)
        return console.log(`${user} is no longer an admin.`)
      }
      await api().call('DELETE', appPath(opts, `/perms/${encodeURIComponent(user)}`))
      console.log(`No longer shared with ${user}.`)
    })
}
