// Compiles src/ into dist/ with tsc, after the kit (packages/client, whose .d.ts files the service imports), and records
// what dist/ was built from in dist/.build-stamp: a hash of every file under src/ and the kit's src/, the tsconfig files
// and the TypeScript version. Usage:
//   node scripts/build.mjs              build (npm run build)
//   node scripts/build.mjs --if-stale   build only when dist/ is not the build of the current sources: npm start,
//                                       migrate, sessions, example and bench start at once from a current build
//   node scripts/build.mjs --install    npm's postinstall: build if stale where there is something to build (src/ and
//                                       typescript present; the production image has neither); a failed build is
//                                       reported but does not fail the install (npm start builds again and stops there)
// Messages go to stderr, so that a command's own output (npm run sessions -- list --json) stays clean.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

// The files dist/ depends on, relative to the root: every file under these directories, and these files.
const INPUT_DIRS = ['src', 'packages/client/src']
const INPUT_FILES = ['tsconfig.json', 'tsconfig.build.json', 'packages/client/tsconfig.json', 'packages/client/tsconfig.cjs.json']
// The kit's own build skips itself when its dist/ is newer than its sources.
const KIT_BUILD = path.join('packages', 'client', 'build.mjs')

function filesUnder(root, dir) {
  const found = []
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const relative = path.posix.join(dir, entry.name)
    if (entry.isDirectory()) found.push(...filesUnder(root, relative))
    else if (entry.isFile()) found.push(relative)
  }
  return found
}

// The hash of what a build of `root` is made from: file names and contents (not times, so a checkout or a touch that
// leaves the contents alone does not make dist/ stale, and an edit that keeps the time does), and the compiler version.
export function sourceHash(root = ROOT) {
  const hash = createHash('sha256')
  const files = [...INPUT_DIRS.flatMap((dir) => filesUnder(root, dir)), ...INPUT_FILES].sort()
  for (const file of files) {
    hash.update(`${file}\0`)
    hash.update(existsSync(path.join(root, file)) ? readFileSync(path.join(root, file)) : '(missing)')
    hash.update('\0')
  }
  const typescript = path.join(root, 'node_modules', 'typescript', 'package.json')
  hash.update(`typescript ${existsSync(typescript) ? JSON.parse(readFileSync(typescript, 'utf8')).version : '(missing)'}`)
  return hash.digest('hex')
}

export const stampPath = (root = ROOT) => path.join(root, 'dist', '.build-stamp')
const MAIN = 'dist/main.js'

// Why dist/ must be built again, or undefined when it is the build of the current sources.
export function staleReason(root = ROOT) {
  if (!existsSync(path.join(root, MAIN))) return `${MAIN} is missing`
  let stamp
  try {
    stamp = readFileSync(stampPath(root), 'utf8').trim()
  } catch {
    return 'dist/ has no build stamp'
  }
  return stamp === sourceHash(root) ? undefined : 'src/ or the build configuration changed since the last build'
}

// Runs tsc; on success writes the stamp of the sources as they were when it started (an edit made during the build
// leaves dist/ stale, so the next start builds again). Returns tsc's exit status.
export function build(root = ROOT) {
  const hash = sourceHash(root)
  const kit = spawnSync(process.execPath, [path.join(root, KIT_BUILD)], { cwd: path.dirname(path.join(root, KIT_BUILD)), stdio: ['ignore', 2, 2] })
  if (kit.status !== 0) {
    rmSync(stampPath(root), { force: true })
    return kit.status ?? 1
  }
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: ['ignore', 2, 2] })
  const status = result.status ?? 1
  if (status !== 0) {
    rmSync(stampPath(root), { force: true })
    return status
  }
  mkdirSync(path.join(root, 'dist'), { recursive: true })
  const temporary = `${stampPath(root)}.${process.pid}`
  writeFileSync(temporary, `${hash}\n`)
  renameSync(temporary, stampPath(root))
  return 0
}

// The command line, for `root`; messages go to `log`. Returns the exit status.
export function main(args, { root = ROOT, log = (line) => console.error(line) } = {}) {
  const mode = args[0]
  if (mode !== undefined && mode !== '--if-stale' && mode !== '--install') {
    log('usage: node scripts/build.mjs [--if-stale | --install]')
    return 2
  }
  if (mode === '--install') {
    if (!existsSync(path.join(root, 'src')) || !existsSync(path.join(root, 'node_modules', 'typescript'))) return 0
  }
  if (mode !== undefined) {
    const reason = staleReason(root)
    if (reason === undefined) return 0
    log(`build: ${reason}; compiling with tsc -p tsconfig.build.json`)
  }
  const status = build(root)
  if (status !== 0 && mode === '--install') {
    log(`build: tsc failed (exit ${status}); npm start will try again`)
    return 0
  }
  return status
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2))
}
