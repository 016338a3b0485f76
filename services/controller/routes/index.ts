import type { RoutePlugin } from '../context.js'
import { authRoutes } from './auth.js'
import { eventsRoutes } from './events.js'
import { keyRoutes } from './keys.js'
import { userRoutes } from './users.js'

/** Every route file of the controller, registered under /v1. */
export const ROUTES: RoutePlugin[] = [authRoutes, keyRoutes, userRoutes, eventsRoutes]
