# The session service image: compiled with dev dependencies in one stage, run with production dependencies only in the
# next, as an unprivileged user. It has no embedded Postgres (optional dependencies are left out): set DATABASE_URL.
# Secrets (API_KEYS, ADMIN_API_KEYS, the database password) come from the environment at run time, never from here.
# Node 24, the current LTS line (CI runs the suite on it too); Debian 12 (bookworm) underneath, named so that a new
# Debian release does not change the base unannounced.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci's postinstall builds when it can (here src/ is not there yet, so it does nothing): the script must be there first.
COPY scripts/build.mjs ./scripts/
# The kit (a workspace the service imports its contract from): npm ci builds it.
COPY packages/client/package.json packages/client/build.mjs packages/client/tsconfig.json packages/client/tsconfig.cjs.json ./packages/client/
COPY packages/client/src ./packages/client/src
# The optional dependencies are the embedded Postgres binaries: not needed to compile.
RUN npm ci --omit=optional --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/build.mjs ./scripts/
COPY --from=build /app/packages/client/package.json /app/packages/client/build.mjs ./packages/client/
COPY --from=build /app/packages/client/dist ./packages/client/dist
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# Read at run time: the migrations, the contract served at GET /openapi.yaml, and the console's static files.
COPY sql ./sql
COPY openapi.yaml ./
COPY src/console/assets ./src/console/assets
# The image's unprivileged "node" user, by number so that runAsNonRoot-style checks can verify it. The files stay
# owned by root: the process cannot change its own code.
USER 1000:1000
EXPOSE 8080
# No curl in the slim image: Node's own fetch asks /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((res) => process.exit(res.ok ? 0 : 1), () => process.exit(1))"]
# On SIGTERM the service stops accepting connections, finishes requests in flight (up to 10 s) and exits 0: allow it
# more than that before SIGKILL (docker stop -t 15, compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
# The same command as npm start: V8's young generation capped at 3 × 8 MB (the default 16 MB semi-spaces let a busy
# node grow past 150 MB of RSS; measured by npm run bench, README "Performance").
CMD ["node", "--max-semi-space-size=8", "dist/main.js"]
