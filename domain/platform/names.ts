/** A backup or event-log export id: `YYYYMMDD-HHMMSS-xxxx` (UTC, 4 random hex digits); the event schemas and the store's manifests use it. */
export const STORE_OBJECT_ID_PATTERN = '^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$'
export const STORE_OBJECT_ID_RE = new RegExp(STORE_OBJECT_ID_PATTERN)
