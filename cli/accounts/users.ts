import type { Command } from 'commander'
import { ApiClient } from '../client.js'
import { printList } from '../output.js'

/** users:list (admins only). */
export function usersTopic(program: Command): void {
  program
    .command('users:list')
    .description('every user of the platform (admins only)')
    .option('--json', 'print the API JSON')
    .action(async (opts: { json?: boolean }) => {
      const users = await ApiClient.fromEnv().call<{ username: string; email: string; admin: boolean; createdAt: string }[]>('GET', '/v1/users')
      printList(
        users.map((u) => ({ ...u, admin: u.admin ? 'yes' : '' })),
        [{ key: 'username', title: 'user' }, { key: 'email' }, { key: 'admin' }, { key: 'createdAt', title: 'registered' }],
        { json: opts.json, empty: 'No users.' },
        users,
      )
    })
}
