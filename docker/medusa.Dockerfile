# Medusa v2 backend image: one image for the server, the worker and the migration job.
#
# Build with BuildKit (`DOCKER_BUILDKIT=1 docker build`, buildx, or Pulumi docker-build), from the
# app's root as context:
#   docker build -f docker/medusa.Dockerfile \
#     --build-arg BASE_IMAGE=registry.example.com/medusa-base@sha256:... \
#     --secret id=npmrc,src=$HOME/.npmrc   (optional) \
#     -t shop/medusa:<release> path/to/medusa-app
#
# There is deliberately no `# syntax=` line: it would make BuildKit pull a frontend image from
# Docker Hub at every build. Everything used here (RUN --mount=type=cache|secret, COPY --chown with
# names) is supported by the Dockerfile frontend built into dockerd 20.10 and later. COPY --link
# is not (20.10 rejects it), so it is not used.
#
# Build args:
#   NODE_IMAGE           Node image for the build stages.               Default node:20-bookworm-slim
#   BASE_IMAGE           Runtime base from docker/base.Dockerfile (system packages and the `medusa`
#                        user, uid 1001); pin it by digest.            Default medusa-deploy/base:latest
#   NPM_CONFIG_LOGLEVEL  npm's log level in the install steps; `http` lists every fetch with
#                        "(cache hit)" or "(cache miss)".              Default notice
# Secrets:
#   npmrc                Optional .npmrc (private registry token, cafile, ...). Mounted at
#                        /root/.npmrc only while npm runs, never stored in a layer.
#
# Runtime: WORKDIR /server, user medusa, PORT 9000, `medusa start` by default. The role comes from
# the environment (MEDUSA_WORKER_MODE=server|worker|shared, read by medusa-config); migrations run
# as a separate container of the same image: `medusa db:migrate --execute-safe-links`.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG BASE_IMAGE=medusa-deploy/base:latest

# The dependency manifest alone, so the install steps below are cached until it changes.
FROM ${NODE_IMAGE} AS manifest
WORKDIR /app
# Puppeteer (PDFs) uses the base image's Chromium; its install script must not download another.
# npm's update check would be one more registry request per npm command.
ENV PUPPETEER_SKIP_DOWNLOAD=true \
    PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=true \
    NPM_CONFIG_UPDATE_NOTIFIER=false
COPY package.json package-lock.json ./

# Dependencies are installed incrementally. The tree the previous build installed is kept in a
# cache mount of its own; `npm install` brings it to this lockfile (adding, upgrading and removing
# only what changed, from the npm cache mount) instead of `npm ci` unpacking all ~1,100 packages
# again, and the result is copied into the layer. `npm ci --dry-run` runs first so that a
# package.json the lockfile does not match fails the build exactly as `npm ci` would; `--no-save`
# keeps the lockfile the only source of versions.

# All dependencies, for the build.
FROM manifest AS deps
ARG NPM_CONFIG_LOGLEVEL=notice
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=cache,target=/var/cache/medusa-deploy/deps,id=medusa-deploy-deps,sharing=locked \
    --mount=type=secret,id=npmrc,target=/root/.npmrc \
    { npm ci --dry-run --no-audit --no-fund >/dev/null 2>/tmp/lockfile-check \
       || { head -n 3 /tmp/lockfile-check >&2; echo "package.json and package-lock.json are not in sync: run npm install and commit package-lock.json" >&2; exit 1; }; } \
 && rm -f /tmp/lockfile-check \
 && cp package.json package-lock.json /var/cache/medusa-deploy/deps/ \
 && cd /var/cache/medusa-deploy/deps \
 && npm install --no-save --no-audit --no-fund \
 && cp -a node_modules /app/node_modules

# Production dependencies, from the lockfile only: this stage does not wait for the build, so
# BuildKit runs it alongside. `medusa build` writes .medusa/server/package.json and
# package-lock.json as copies of the root ones, so `--omit=dev` here yields the tree that the
# documented `cd .medusa/server && npm ci --omit=dev` would (the fixture test checks both).
FROM manifest AS prod-deps
ARG NPM_CONFIG_LOGLEVEL=notice
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=cache,target=/var/cache/medusa-deploy/prod-deps,id=medusa-deploy-prod-deps,sharing=locked \
    --mount=type=secret,id=npmrc,target=/root/.npmrc \
    { npm ci --dry-run --omit=dev --no-audit --no-fund >/dev/null 2>/tmp/lockfile-check \
       || { head -n 3 /tmp/lockfile-check >&2; echo "package.json and package-lock.json are not in sync: run npm install and commit package-lock.json" >&2; exit 1; }; } \
 && rm -f /tmp/lockfile-check \
 && cp package.json package-lock.json /var/cache/medusa-deploy/prod-deps/ \
 && cd /var/cache/medusa-deploy/prod-deps \
 && npm install --omit=dev --no-save --no-audit --no-fund \
 && cp -a node_modules /app/node_modules

# The app: `medusa build` compiles the server (and the admin) into .medusa/server.
FROM deps AS build
COPY . .
RUN npm run build && test -f .medusa/server/package.json

# Runtime: the base with system packages, the built server and production node_modules. The files
# get their owner as they are copied (COPY --chown): a `RUN chown -R` would write every file again
# into one more layer.
FROM ${BASE_IMAGE} AS runtime
WORKDIR /server
ENV NODE_ENV=production \
    PORT=9000 \
    PATH=/server/node_modules/.bin:$PATH
COPY --chown=medusa:medusa --from=prod-deps /app/node_modules ./node_modules
COPY --chown=medusa:medusa --from=build /app/.medusa/server ./
USER medusa
EXPOSE 9000
# Node itself checks /health (no curl needed in the image). Medusa answers within seconds of start;
# start-period covers slow hosts. Deploys may override these with the container's own health check.
HEALTHCHECK --interval=5s --timeout=4s --start-period=60s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||9000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Signals: the command runs as PID 1 through `exec`, so `docker stop`'s SIGTERM reaches Medusa,
# whose start command handles it (graceful shutdown, exit 0). When the base has tini (the default
# base installs it), tini becomes PID 1 instead, forwards signals and reaps orphans such as
# Puppeteer's Chromium helpers. Under `docker run --init` PID 1 is already an init: run directly.
ENTRYPOINT ["/bin/sh", "-c", "if [ $$ -eq 1 ] && command -v tini >/dev/null 2>&1; then exec tini -g -- \"$@\"; fi; exec \"$@\"", "medusa-entrypoint"]
CMD ["medusa", "start"]
