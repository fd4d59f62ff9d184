# syntax=docker/dockerfile:1
#
# One image for every Weft program; the command chooses which one runs:
#   node /app/dist/controllers/main.js   weft-controller (runs as the image's non-root user)
#   node /app/dist/agent/main.js         weft-agent (needs root with NET_ADMIN, NET_RAW,
#                                        NET_BIND_SERVICE and SYS_ADMIN: netlink, BGP on port 179,
#                                        nsenter into pod network namespaces; the chart asks for them)
#   node /app/dist/cni/install.js        installs the CNI plugin and the conflist on the host: the
#                                        native plugin dist/cni/weft (a static executable) by
#                                        default, or the Node.js plugin dist/cni/weft-cni.js
#   node /app/dist/cli/main.js           weftctl (the default command)
#
# Base image: Node.js LTS on Debian bookworm-slim, pinned by tag. Release builds should pin the
# digest as well, which makes the build reproducible and immune to a re-pushed tag:
#   docker buildx imagetools inspect node:24.22.3-bookworm-slim   # prints the index digest
#   docker build --build-arg NODE_IMAGE=node:24.22.3-bookworm-slim@sha256:<digest> .
# (Node 24 "Krypton" is an LTS line, supported until April 2028; it runs everything that targets
# Node 20, the minimum in package.json "engines".)
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# ---- build: TypeScript to dist/, the Node.js CNI plugin bundle and the native CNI plugin ----
FROM ${NODE_IMAGE} AS build
# gcc and the static C library: the native CNI plugin is one static executable (cni/native).
RUN apt-get update \
  && apt-get install -y --no-install-recommends gcc libc6-dev \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Install scripts are not needed: netlink ships N-API prebuilds, esbuild its platform package.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
# The programs' layers, bottom up (docs/architecture.md); tests, devenv/, lab/ and bench/ stay out.
COPY api ./api
COPY lib ./lib
COPY net ./net
COPY ipam ./ipam
COPY bgp ./bgp
COPY netlink ./netlink
COPY datastore ./datastore
COPY runtime ./runtime
COPY controllers ./controllers
COPY agent ./agent
COPY cni ./cni
COPY cli ./cli
# tsconfig.build.json leaves out the tests that sit beside the code.
RUN npx tsc -p tsconfig.build.json && node dist/cni/bundle.js && sh cni/native/build.sh dist/cni/weft

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
# bird2: BGP for the agent; iproute2: `ip -batch` inside pod namespaces (nsenter is in util-linux,
# which every Debian image has); nftables: the agent's outgoing-NAT table (nft -f, one transaction).
RUN apt-get update \
  && apt-get install -y --no-install-recommends bird2 iproute2 nftables \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
  NODE_OPTIONS=--enable-source-maps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
# Unprivileged by default (the controller, weftctl); the agent's pod asks for root explicitly.
USER 65532:65532
CMD ["node", "/app/dist/cli/main.js", "--help"]
