/** The log plane: lines, their stream on JetStream, syslog. What other folders may use. */
export * from './line.js'
export { LogStream, logLimits, type DurableFeed, type LiveFeed, type LogStreamLimits, type LogStreamOptions, type StoredBatch } from './stream.js'
export { formatSyslogFrame, MAX_FRAME_BYTES, parseSyslog, SyslogError, SyslogFramer, type SyslogMessage } from './syslog.js'
export { TokenBucket } from './rate.js'
export {
  CHUNK_BYTES,
  chunksOf,
  LoggerClient,
  matches,
  MAX_REQUEST_LINES,
  mergeLines,
  type AnswerChunk,
  type HistoryRequest,
  type LineFilter,
  type RecentRequest,
} from './protocol.js'
export { INPUT_TOKEN, logInputToken, sameToken, splitInputToken } from './input-token.js'
