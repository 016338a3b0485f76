import type { RoutePlugin } from '../context.js'
import { eventsRoutes } from './events.js'

/** Every route file of the controller, registered under /v1. */
export const ROUTES: RoutePlugin[] = [eventsRoutes]
