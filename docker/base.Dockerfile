# Runtime base for docker/medusa.Dockerfile: Node, the system packages the app needs at run time
# (Chromium and fonts for Puppeteer PDFs, curl, the PostgreSQL client, tini) and the unprivileged
# `medusa` user (uid/gid 1001). Built rarely (when the package list or Node changes) and referenced
# by digest, so app builds never run apt.
#
#   docker build -f docker/base.Dockerfile -t registry.example.com/medusa-base:node20 docker/
#
# Build args:
#   NODE_IMAGE       Debian-based Node image.                            Default node:20-bookworm-slim
#   SYSTEM_PACKAGES  apt packages to install; empty installs nothing (for a Node image without apt,
#                    such as the test image imported from the build machine's files).
#                    Default: chromium fonts-freefont-ttf fonts-noto-color-emoji curl
#                             postgresql-client ca-certificates tini
#   APP_UID, APP_GID uid/gid of the `medusa` user.                       Default 1001
#
# Puppeteer: PUPPETEER_EXECUTABLE_PATH points at Debian's /usr/bin/chromium. It is set even when
# SYSTEM_PACKAGES leaves chromium out: only Puppeteer reads it, and an app using Puppeteer needs
# chromium in SYSTEM_PACKAGES anyway.

ARG NODE_IMAGE=node:20-bookworm-slim
FROM ${NODE_IMAGE}

ARG SYSTEM_PACKAGES="chromium fonts-freefont-ttf fonts-noto-color-emoji curl postgresql-client ca-certificates tini"
RUN if [ -n "$SYSTEM_PACKAGES" ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $SYSTEM_PACKAGES \
        && rm -rf /var/lib/apt/lists/*; \
    else \
        echo "SYSTEM_PACKAGES is empty: no system packages installed"; \
    fi

# Debian images have groupadd/useradd; Alpine and the busybox-based test image have addgroup/adduser.
ARG APP_UID=1001
ARG APP_GID=1001
RUN if command -v useradd >/dev/null 2>&1; then \
        groupadd --gid "$APP_GID" medusa \
        && useradd --uid "$APP_UID" --gid medusa --shell /usr/sbin/nologin --create-home medusa; \
    else \
        addgroup -S -g "$APP_GID" medusa \
        && adduser -S -D -u "$APP_UID" -G medusa -h /home/medusa -s /sbin/nologin medusa; \
    fi \
    && mkdir -p /server && chown medusa:medusa /server

ENV PUPPETEER_EXECUTABLE_PATH=/usr/bin/chromium \
    PUPPETEER_SKIP_DOWNLOAD=true \
    PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=true
