import { pino, type Logger, type LoggerOptions } from 'pino'

export type { Logger } from 'pino'

/**
 * The root logger: pino JSON on stdout, one `service` field per child. Log lines about an event or a
 * request carry its `correlationId` (use {@link withCorrelation}).
 */
export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: { pid: process.pid, ...(opts.name ? { service: opts.name } : {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }
  return opts.destination ? pino(options, opts.destination as any) : pino(options)
}

/** A child logger for one service. */
export function serviceLogger(root: Logger, service: string): Logger {
  return root.child({ service })
}

/** A child logger for the handling of one event or request. */
export function withCorrelation(log: Logger, correlationId: string | undefined, extra: Record<string, unknown> = {}): Logger {
  return log.child({ correlationId, ...extra })
}
