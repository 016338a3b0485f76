/**
 * The `wharf` command. The commands come with the controller; for now it knows its version and
 * explains itself.
 */
import { Command } from 'commander'
import { VERSION } from '../core/version.js'

export function buildProgram(): Command {
  return new Command('wharf')
    .description('Wharf: git push to deploy, on your own machines.\nCommands for apps, config, releases and more arrive with the controller API.')
    .version(VERSION, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError()
    .exitOverride()
}

const program = buildProgram()
try {
  await program.parseAsync(process.argv)
  if (process.argv.length <= 2) program.outputHelp()
} catch (err) {
  const e = err as { code?: string; exitCode?: number; message: string }
  // commander throws for --help / --version too (exitOverride): those are not errors.
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(0)
  process.exit(e.exitCode ?? 1)
}
