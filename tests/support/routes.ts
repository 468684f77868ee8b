// The routes an app serves, read from printRoutes' tree: "METHOD /path" for each.
import type { FastifyInstance } from 'fastify'

// Each level of the tree is indented by four columns and continues its parent's path.
export function servedRoutes(tree: string): string[] {
  const parents: string[] = []
  const routes: string[] = []
  for (const line of tree.split('\n')) {
    const match = /^((?:│ {3}| {4})*)(?:├── |└── )(.*?)(?: \(([^)]*)\))?$/.exec(line)
    if (match === null) continue
    const depth = match[1].length / 4
    parents.length = depth
    const full = (depth === 0 ? '' : parents[depth - 1]) + match[2]
    parents.push(full)
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean)) routes.push(`${method} ${full}`)
  }
  return routes
}

export const routesOf = (app: FastifyInstance): string[] => servedRoutes(app.printRoutes({ commonPrefix: false, includeHooks: false }))
