import type { Command } from 'commander'
import { ApiClient, CliError, loadState, saveState } from '../client.js'
import { printJson, printList } from '../output.js'

interface UserBody {
  username: string
  email: string
  admin: boolean
}

function normalizeUrl(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(/^[a-z]+:\/\//i.test(url) ? url : `http://${url}`)
  } catch {
    throw new CliError('WHARF_INVALID', `not a controller URL: ${url}`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CliError('WHARF_INVALID', `not an http(s) URL: ${url}`)
  return parsed.toString().replace(/\/+$/, '')
}

/** auth:register, auth:login, auth:logout, auth:whoami, auth:passwd, auth:regenerate (and register, login, logout, whoami). */
export function authTopic(program: Command): void {
  program
    .command('auth:register <url>')
    .alias('register')
    .description('create an account on the controller at <url> (the first one becomes the admin), and sign in')
    .requiredOption('--username <name>', 'user name: lower case letters, digits, _ and -')
    .requiredOption('--password <password>', 'at least 8 characters')
    .requiredOption('--email <email>', 'e-mail address')
    .action(async (url: string, opts: { username: string; password: string; email: string }) => {
      const base = normalizeUrl(url)
      const state = loadState()
      // Signed in to this controller already (an admin registering someone else): keep that session.
      const session = state.url === base && state.token ? state.token : undefined
      const api = ApiClient.fromEnv().withUrl(base, session)
      const user = await api.call<UserBody>('POST', '/v1/auth/register', { username: opts.username, password: opts.password, email: opts.email })
      if (session) {
        console.log(`Registered ${user.username}${user.admin ? ' (admin)' : ''}.`)
        return
      }
      const { token } = await api.call<{ token: string }>('POST', '/v1/auth/login', { username: opts.username, password: opts.password })
      saveState({ url: base, username: user.username, token })
      console.log(`Registered ${user.username}${user.admin ? ' (admin: the first user of this platform)' : ''}; signed in to ${base}.`)
    })

  program
    .command('auth:login <url>')
    .alias('login')
    .description('sign in to the controller at <url>; keeps the token in ~/.wharf/client.json')
    .requiredOption('--username <name>', 'user name')
    .requiredOption('--password <password>', 'password')
    .action(async (url: string, opts: { username: string; password: string }) => {
      const base = normalizeUrl(url)
      const res = await ApiClient.fromEnv().withUrl(base).call<{ token: string; username: string }>('POST', '/v1/auth/login', {
        username: opts.username,
        password: opts.password,
      })
      saveState({ url: base, username: res.username, token: res.token })
      console.log(`Signed in as ${res.username} to ${base}.`)
    })

  program
    .command('auth:logout')
    .alias('logout')
    .description('revoke the saved token and forget it')
    .action(async () => {
      const state = loadState()
      const api = ApiClient.fromEnv()
      if (api.token) {
        try {
          await api.call('POST', '/v1/auth/logout')
        } catch (err) {
          // A token revoked already is as good as logged out.
          if (!(err instanceof CliError && err.code === 'WHARF_UNAUTHORIZED')) throw err
        }
      }
      const { token: _token, ...rest } = state
      saveState(rest)
      console.log('Signed out.')
    })

  program
    .command('auth:whoami')
    .alias('whoami')
    .description('the signed-in user')
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const api = ApiClient.fromEnv()
      if (!api.token) throw new CliError('WHARF_UNAUTHORIZED', 'not signed in: run `wharf auth:login <url>`')
      const me = await api.call<UserBody>('GET', '/v1/auth/whoami')
      if (opts.json) return printJson(me)
      console.log(`You are ${me.username} <${me.email}>${me.admin ? ', an admin,' : ''} at ${api.url}.`)
    })

  program
    .command('auth:passwd')
    .description('change your password (other sessions are signed out; this one stays)')
    .requiredOption('--password <password>', 'the current password')
    .requiredOption('--new-password <password>', 'the new password, at least 8 characters')
    .action(async (opts: { password: string; newPassword: string }) => {
      await ApiClient.fromEnv().call('POST', '/v1/auth/passwd', { password: opts.password, newPassword: opts.newPassword })
      console.log('Password changed; other sessions were signed out.')
    })

  program
    .command('auth:regenerate')
    .description('revoke every token of yours and sign in with a new one')
    .action(async () => {
      const api = ApiClient.fromEnv()
      const { token } = await api.call<{ token: string }>('POST', '/v1/auth/tokens')
      const state = loadState()
      saveState({ ...state, url: state.url ?? api.url, token })
      console.log('Every earlier token is revoked; the new one is saved.')
      if (process.env.WHARF_TOKEN) console.log('WHARF_TOKEN is set: it is revoked too; unset it or set it to the new token in ~/.wharf/client.json.')
    })

  program
    .command('auth:tokens')
    .description('your API tokens: id, when issued, when each expires (WHARF_TOKEN_TTL), the one in use')
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const res = await ApiClient.fromEnv().call<{ tokens: { id: string; createdAt: string; expiresAt: string; expired: boolean; current: boolean }[] }>(
        'GET',
        '/v1/auth/tokens',
      )
      const rows = res.tokens.map((t) => ({ ...t, state: t.current ? 'in use' : t.expired ? 'expired' : '' }))
      printList(
        rows,
        [{ key: 'id' }, { key: 'createdAt', title: 'issued' }, { key: 'expiresAt', title: 'expires' }, { key: 'state' }],
        { ...opts, empty: 'No tokens.' },
        res,
      )
    })

  program
    .command('auth:tokens:revoke <id>')
    .description('revoke one of your API tokens by its id (from auth:tokens)')
    .option('--json', 'print the API JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      await ApiClient.fromEnv().call('DELETE', `/v1/auth/tokens/${encodeURIComponent(id)}`)
      if (opts.json) return printJson({ revoked: id })
      console.log(`Token ${id} is revoked.`)
    })
}
