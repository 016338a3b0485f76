export { logger } from './service.js'
export { LogServer, type LogServerOptions } from './logger.js'
