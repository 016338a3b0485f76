export { logger } from './service.js'
export { LogServer, MAX_REQUEST_LINES, type LogServerOptions } from './logger.js'
export { LoggerClient } from './protocol.js'
