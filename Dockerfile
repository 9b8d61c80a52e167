# syntax=docker/dockerfile:1
#
# One image for every IoTFlow app. The app is picked by APP (build arg, also
# kept as an env var so it can be overridden at run time):
#   docker build --build-arg APP=writer-influx -t iotflow/writer-influx .
# `pnpm build` bundles each app's TypeScript into dist/<app>/main.js (third-party packages stay
# in node_modules); the container runs that with plain node, no TypeScript loader.

# --- base: Node + pnpm -------------------------------------------------------
FROM node:20-bookworm-slim AS base
RUN npm install -g pnpm@10 && npm cache clean --force
WORKDIR /app

# --- manifests: only the workspace package.json files -----------------------
# COPY cannot keep directory structure for a glob like apps/*/package.json, so
# copy the workspace folders here and strip everything but package.json. When
# only sources change this stage reruns, but its output is byte-identical and
# the install layer below stays cached.
FROM base AS manifests
COPY apps ./apps
COPY packages ./packages
RUN find apps packages -mindepth 1 -maxdepth 1 ! -type d -exec rm -rf {} + \
 && find apps packages -mindepth 2 -maxdepth 2 ! -name package.json -exec rm -rf {} +

# --- deps: install once per lockfile/manifest change -------------------------
FROM base AS deps
# .npmr[c]: the glob makes .npmrc optional (pnpm 10 settings may live in
# pnpm-workspace.yaml instead); COPY of a plain missing file would fail.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmr[c] ./
# patches/: pnpm-workspace.yaml's patchedDependencies (a fix postgres.js has not released yet).
COPY patches ./patches
COPY --from=manifests /app/ ./
# No --prod: the build (esbuild, run by tsx) needs the dev dependencies.
# The cache mount keeps pnpm's content-addressed store between builds.
RUN --mount=type=cache,id=iotflow-pnpm-store,target=/pnpm/store \
    pnpm install --frozen-lockfile --store-dir=/pnpm/store

# --- runtime -----------------------------------------------------------------
FROM deps AS runtime
ENV NODE_ENV=production
# .dockerignore keeps node_modules out, so this does not clobber the install.
COPY . .

# Declared last so the three app images share every layer above.
ARG APP=gateway
ENV APP=${APP}
# Fail the build early on a typo'd APP rather than at container start.
RUN test -f "apps/${APP}/src/main.ts" || { echo "no such app: apps/${APP}/src/main.ts" >&2; exit 1; }
# Built in place: the bundles import third-party packages from this image's node_modules.
RUN pnpm build

# Files stay root-owned (read-only for the app).
USER node

# Health checks live in docker-compose.yml: each app listens on its own port.
# Shell form so ${APP} expands; exec makes node receive SIGTERM directly.
# The flags of APP_NODE_FLAGS (infra/build/build-apps.ts): the heap cap keeps V8's heap growth modest.
CMD exec node --enable-source-maps --max-old-space-size=1536 "dist/${APP}/main.js"
