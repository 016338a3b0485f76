import { readFileSync, writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import { CliError } from '../client.js'
import { printJson, table } from '../output.js'
import { asOfLine, getAt, withAt } from './at.js'
import { api, appPath, pairs, withApp } from './common.js'
import { parseDotenv, renderDotenv } from './dotenv.js'

/** The API takes at most this many keys per call; bigger sets go in several calls (each a release). */
const PER_CALL = 100

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += PER_CALL) out.push(items.slice(i, i + PER_CALL))
  return out
}

async function setValues(opts: { app?: string }, values: Record<string, string>): Promise<Record<string, string>> {
  let last: Record<string, string> = {}
  for (const part of chunks(Object.entries(values))) {
    last = (await api().call<{ values: Record<string, string> }>('POST', appPath(opts, '/config'), { values: Object.fromEntries(part) })).values
  }
  return last
}

/** config:list|set|unset|pull|push. */
export function configTopic(program: Command): void {
  withAt(withApp(program.command('config:list').description("an app's config")))
    .option('--json', 'print the API JSON')
    .option('--shell', 'print KEY=value lines')
    .action(async (opts: { app?: string; json?: boolean; shell?: boolean; at?: string }) => {
      const { body: res, asOf } = await getAt<{ values: Record<string, string> }>(appPath(opts, '/config'), opts.at)
      if (opts.json) return printJson(res)
      const keys = Object.keys(res.values).sort()
      if (opts.shell) {
        process.stdout.write(renderDotenv(res.values))
        return
      }
      if (asOf) console.log(asOfLine(asOf))
      console.log(
        keys.length
          ? table(
              keys.map((k) => ({ key: k, value: res.values[k] })),
              [{ key: 'key' }, { key: 'value' }],
            )
          : 'No config.',
      )
    })

  withApp(program.command('config:set <pairs...>').description('set config values, KEY=value ... (makes a release)')).action(
    async (args: string[], opts: { app?: string }) => {
      const values = pairs(args, 'KEY=value', (m) => new CliError('WHARF_INVALID', m))
      await setValues(opts, values)
      console.log(`Set ${Object.keys(values).join(', ')}.`)
    },
  )

  withApp(program.command('config:unset <keys...>').description('remove config keys (keys not set are ignored)')).action(
    async (keys: string[], opts: { app?: string }) => {
      for (const part of chunks(keys)) await api().call('POST', appPath(opts, '/config/unset'), { keys: part })
      console.log(`Unset ${keys.join(', ')}.`)
    },
  )

  withApp(program.command('config:pull').description("write an app's config to a .env file"))
    .option('-o, --file <path>', 'the file', '.env')
    .action(async (opts: { app?: string; file: string }) => {
      const res = await api().call<{ values: Record<string, string> }>('GET', appPath(opts, '/config'))
      writeFileSync(opts.file, renderDotenv(res.values), { mode: 0o600 })
      console.log(`Wrote ${Object.keys(res.values).length} values to ${opts.file}.`)
    })

  withApp(program.command('config:push').description('set config from a .env file'))
    .option('-f, --file <path>', 'the file', '.env')
    .action(async (opts: { app?: string; file: string }) => {
      let values: Record<string, string>
      try {
        values = parseDotenv(readFileSync(opts.file, 'utf8'))
      } catch (err) {
        throw new CliError('WHARF_INVALID', `${opts.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
      if (Object.keys(values).length === 0) throw new CliError('WHARF_INVALID', `${opts.file} has no KEY=value lines`)
      await setValues(opts, values)
      console.log(`Set ${Object.keys(values).length} values from ${opts.file}.`)
    })
}
