// The database driver the service runs with must be the one package.json pins: postgres.js 3.4.9 (the version before)
// loses queries, hands out dead connections and can end the process when a backend is terminated (tests/db/driver-faults.test.ts);
// it was only safe with fixes that an install script wrote into node_modules, which `npm ci --ignore-scripts` or a
// node_modules left from before the upgrade do not have. Checked at start, so such a tree is refused with one line
// instead of failing later under a database restart.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

// The version package.json asks for (dependencies.postgres, an exact version).
export function requiredDriverVersion(root = ROOT): string {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  const version = pkg.dependencies?.postgres
  if (version === undefined) throw new Error(`${path.join(root, 'package.json')} has no dependency on postgres`)
  return version
}

// The package.json of the postgres package that `import 'postgres'` loads from `from` (a file URL or path).
export function loadedDriverVersion(entry: string): { version: string; dir: string } {
  let dir = path.dirname(entry.startsWith('file:') ? fileURLToPath(entry) : entry)
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'postgres' && typeof pkg.version === 'string') return { version: pkg.version, dir }
    } catch {
      // no package.json here
    }
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`no package.json of postgres above ${entry}`)
    dir = parent
  }
}

// Why the driver at `entry` must not be used, or undefined when it is the required one.
export function driverProblem(entry: string, required: string): string | undefined {
  let loaded: { version: string; dir: string }
  try {
    loaded = loadedDriverVersion(entry)
  } catch (err) {
    return `the database driver cannot be checked (${(err as Error).message}): run npm install`
  }
  if (loaded.version === required) return undefined
  const why = loaded.version.startsWith('3.') ? '3.x loses queries or ends the process when the database restarts' : 'the version it is tested with'
  return `the database driver in ${loaded.dir} is postgres ${loaded.version}, this service needs ${required} (${why}): run npm install`
}

// At start: the driver `import 'postgres'` resolves to from here.
export function checkDriver(): string | undefined {
  return driverProblem(import.meta.resolve('postgres'), requiredDriverVersion())
}

export function checkDriverOrExit(): void {
  const problem = checkDriver()
  if (problem === undefined) return
  process.stderr.write(`refusing to start: ${problem}\n`)
  process.exit(1)
}
