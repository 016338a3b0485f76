/**
 * SQL for "the apps a user may see" (owner or collaborator; admins see all and skip it): a
 * sub-select of app names with the user as the given placeholder, for queries over read models.
 */
export function visibleAppsSql(userParam: string): string {
  return `SELECT name FROM rm_apps.apps WHERE destroyed_at IS NULL AND (owner = ${userParam}
            OR name IN (SELECT app FROM rm_access.collaborators WHERE username = ${userParam}))`
}
