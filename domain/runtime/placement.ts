/**
 * Where an app's processes may run on a swarm of many hosts: app settings (config keys) the
 * scheduler turns into Swarm placement. Pure: no I/O.
 *
 * - `WHARF_PLACEMENT`: constraints for every process type, `;`-separated, e.g.
 *   `node.labels.zone==a;node.role!=manager`.
 * - `WHARF_PLACEMENT_<TYPE>` (`WHARF_PLACEMENT_WEB`): constraints for one type, instead of `WHARF_PLACEMENT`.
 * - `WHARF_PLACEMENT_SPREAD`: node labels to spread tasks over evenly, `;`-separated (`zone`), as
 *   Swarm's placement preferences; without it Swarm spreads over nodes by its own strategy.
 */

/** Config keys the scheduler reads as placement. */
export const PLACEMENT_KEY = 'WHARF_PLACEMENT'
export const PLACEMENT_SPREAD_KEY = 'WHARF_PLACEMENT_SPREAD'
/** The most constraints (or spread labels) one setting may hold. */
export const MAX_PLACEMENT_RULES = 10

const LABEL = '[A-Za-z0-9][A-Za-z0-9_.-]{0,62}'
const VALUE = '[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}'
/** What Swarm constrains on: node id, hostname, role, platform, and node or engine labels. */
const CONSTRAINT_RE = new RegExp(
  `^(node\\.(id|hostname|role|platform\\.os|platform\\.arch)|node\\.labels\\.${LABEL}|engine\\.labels\\.${LABEL})\\s*(==|!=)\\s*(${VALUE})$`,
)
const SPREAD_RE = new RegExp(`^${LABEL}$`)

export interface Placement {
  /** Swarm constraints, normalised (`node.labels.zone==a`). */
  constraints: string[]
  /** Node labels to spread over (`zone`: Swarm's `node.labels.zone`). */
  spread: string[]
}

function rules(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(';')
    .map((r) => r.trim())
    .filter(Boolean)
}

/** A constraint as Swarm takes it, or undefined when it is not one Wharf accepts. */
export function parseConstraint(raw: string): string | undefined {
  const m = CONSTRAINT_RE.exec(raw.trim())
  return m ? `${m[1]}${m[3]}${m[4]}` : undefined
}

/** The config key of one process type's constraints: `web` -> `WHARF_PLACEMENT_WEB`. */
export function placementKey(type: string): string {
  return `${PLACEMENT_KEY}_${type.toUpperCase().replace(/-/g, '_')}`
}

/** Whether `key` is a placement setting (and its value must pass {@link checkPlacement}). */
export function isPlacementKey(key: string): boolean {
  return key === PLACEMENT_KEY || key.startsWith(`${PLACEMENT_KEY}_`)
}

/**
 * Why a placement setting is refused (a message for the user), or undefined when it is fine.
 * `WHARF_PLACEMENT_SPREAD` takes label names; the others constraints.
 */
export function checkPlacement(key: string, value: string): string | undefined {
  const list = rules(value)
  if (list.length > MAX_PLACEMENT_RULES) return `${key}: at most ${MAX_PLACEMENT_RULES} rules, separated by ';'`
  if (key === PLACEMENT_SPREAD_KEY) {
    const bad = list.find((l) => !SPREAD_RE.test(l))
    return bad === undefined ? undefined : `${key}: ${JSON.stringify(bad.slice(0, 80))} is not a node label name (letters, digits, _ . -)`
  }
  if (!/^WHARF_PLACEMENT(_[A-Z0-9_]{1,63})?$/.test(key))
    return `${key}: not a placement setting (WHARF_PLACEMENT, WHARF_PLACEMENT_<TYPE>, WHARF_PLACEMENT_SPREAD)`
  const bad = list.find((l) => parseConstraint(l) === undefined)
  if (bad !== undefined)
    return `${key}: ${JSON.stringify(bad.slice(0, 80))} is not a placement constraint (node.labels.<label>, node.role, node.hostname, node.id, node.platform.os|arch, engine.labels.<label>, then == or != and a value)`
  return undefined
}

/** The placement of process `type` under `config`: its own constraints, else the app's; the spread labels. */
export function placementOf(config: Record<string, string>, type: string): Placement {
  const own = config[placementKey(type)]
  const constraints = rules(own ?? config[PLACEMENT_KEY])
    .map(parseConstraint)
    .filter((c): c is string => c !== undefined)
  const spread = rules(config[PLACEMENT_SPREAD_KEY]).filter((l) => SPREAD_RE.test(l))
  return { constraints, spread }
}
