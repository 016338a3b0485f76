export { logspout } from './service.js'
export { Logspout, type LogspoutOptions } from './logspout.js'
