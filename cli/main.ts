/**
 * The `wharf` command: `topic:verb` commands as Deis v1 had them. Errors are one line with a code
 * (`wharf: <message> (<CODE>)`), exit 1, never a stack trace.
 */
import { Command, CommanderError } from 'commander'
import { VERSION } from '../core/version.js'
import { CliError } from './client.js'
import { TOPICS } from './topics.js'

export function buildProgram(): Command {
  const program = new Command('wharf')
    .description('Wharf: git push to deploy, on your own machines.')
    .version(`${VERSION} (node ${process.version})`, '-v, --version', 'print the version of Wharf and of the Node it runs on')
    .helpOption('-h, --help', 'show help')
    .configureOutput({ outputError: () => {} })
    .exitOverride()
    .showSuggestionAfterError(true)
  for (const topic of TOPICS) topic(program)
  program.argument('[command]', 'a command (see --help)').action((command: string | undefined, _opts, cmd: Command) => {
    if (command) throw new CliError('WHARF_INVALID', `unknown command '${command}'; see wharf --help`)
    cmd.outputHelp()
  })
  // Sub-commands inherit the one-line error handling.
  for (const c of program.commands) c.exitOverride().configureOutput({ outputError: () => {} })
  return program
}

try {
  await buildProgram().parseAsync(process.argv)
} catch (err) {
  if (err instanceof CliError) {
    console.error(`wharf: ${err.message} (${err.code})`)
    process.exit(1)
  }
  const e = err as CommanderError
  // commander reports --help and --version as "errors" under exitOverride: they are not.
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(0)
  if (e instanceof CommanderError) {
    console.error(`wharf: ${e.message.replace(/^error: /, '')} (WHARF_INVALID)`)
    process.exit(1)
  }
  console.error(`wharf: ${(err as Error).message} (WHARF_INTERNAL)`)
  process.exit(1)
}
