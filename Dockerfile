# syntax=docker/dockerfile:1
#
# sidecar-injector image: `node dist/cli.js` in /app, as uid/gid 65532.
#
#   docker build -t sidecar-injector .
#   docker run --rm -p 9443:9443 sidecar-injector          # local certificates, see CMD
#
# Run so (the CMD, `serve --host 0.0.0.0`), the injector behaves as `npm start` does
# (`serve --local`): a CA and a certificate for localhost and 127.0.0.1 generated into
# /app/certs (read the CA with `docker cp <container>:/app/certs/ca.crt .`), /inject, /preview
# and /metrics on port 9443. The image itself writes nowhere else.
#
# No image is published: build this one and push it where your nodes pull from, then set the
# chart's image.repository and image.tag.
#
# In the Helm chart the container passes only arguments (`serve --config ... --admin-port
# 9444 ...`). With the chart's default tls.mode=self they add `--cert-mode kubernetes`: the
# injector keeps its CA in a Secret through the API server and holds its serving
# certificates in memory; with tls.mode=secret or certManager they add `--tls-cert ...
# --tls-key ...` for a mounted Secret. Either way nothing is written to the filesystem but
# /tmp, an emptyDir, so the root filesystem can be read-only.

# ---- build: compile TypeScript, and resolve production dependencies on their own ----
FROM node:22-bookworm-slim AS build
WORKDIR /src

# Dependencies first, so source edits reuse the cached layers.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Production dependencies alone, from the same lockfile, into a clean folder: no compiler,
# linters or type packages reach the final image.
RUN mkdir /prod \
 && cp package.json package-lock.json /prod/ \
 && cd /prod \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs scripts/bundle.mjs ./scripts/
COPY src ./src
RUN npm run build

# ---- runtime ----
# node:22-bookworm-slim rather than gcr.io/distroless/nodejs22-debian12: the same Debian and
# Node build as the stage above (so any native module built there runs here), `node` on
# PATH for the ENTRYPOINT, and a shell for `kubectl exec` when debugging a webhook that
# misbehaves in a cluster. npm, npx, corepack and yarn are removed: nothing runs them at
# runtime, and they are most of the image's third-party code.
FROM node:22-bookworm-slim

RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg

ENV NODE_ENV=production
# V8's heap and young generation, set rather than left to Node's defaults (which size the heap
# from the machine's memory, not the container's limit): the chart's values `maxHeapMiB` and
# `maxSemiSpaceMiB`, where the measurements behind them are written; the chart sets NODE_OPTIONS
# itself, this is for `docker run`.
ENV NODE_OPTIONS="--max-old-space-size=192 --max-semi-space-size=8"
WORKDIR /app

COPY --from=build /prod/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# `serve` without --tls-cert/--tls-key or --cert-mode (the CMD below, e.g. `docker run`) keeps
# generated local certificates in ./certs. The chart never uses it: it passes either
# `--cert-mode kubernetes` (certificates in memory, the CA in a Secret) or the files of a
# mounted Secret, and the root filesystem is read-only.
RUN install -d -o 65532 -g 65532 -m 0700 /app/certs

# Numeric, so that Kubernetes' runAsNonRoot can verify it without a passwd entry.
USER 65532:65532
# 9443: /inject and health (everything, without --admin-port); 9444: /preview and /metrics
# when the chart passes --admin-port 9444.
EXPOSE 9443 9444

ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve", "--host", "0.0.0.0"]
