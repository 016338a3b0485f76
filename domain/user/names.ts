/** User and SSH key names, one copy each: the event schemas and the API's checks use these. */

/** A user name: lower case letters, digits, `_` and `-`, 1-32 characters, starting with a letter. */
export const USER_NAME_PATTERN = '^[a-z][a-z0-9_-]{0,31}$'
export const USER_NAME_RE = new RegExp(USER_NAME_PATTERN)

/** The name a user gives a key (default: the key's comment): letters, digits, `@ . _ -`, 1-64 characters. */
export const KEY_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9@._-]{0,63}$'
export const KEY_NAME_RE = new RegExp(KEY_NAME_PATTERN)
