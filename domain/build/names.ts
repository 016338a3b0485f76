/** A git commit id: 40 lower-case hex digits (SHA-1), as pushes carry them; the event schemas and the builder's hook use it. */
export const GIT_SHA_PATTERN = '^[0-9a-f]{40}$'
export const GIT_SHA_RE = new RegExp(GIT_SHA_PATTERN)
