import type { RoutePlugin } from '../context.js'

/** Every route file of the controller, registered under /v1. */
export const ROUTES: RoutePlugin[] = []
