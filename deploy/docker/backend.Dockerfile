# syntax=docker/dockerfile:1.7
# Backend group image: one image for every role of a group (stage, driver), chosen by the container command
# (`uvit stage ...`, `uvit serve ...`). Build from the repository root:
#   docker build -f deploy/docker/backend.Dockerfile -t REGISTRY/uvit-backend:TAG .
#   CPU-only:  docker build -f deploy/docker/backend.Dockerfile --build-arg BASE=ubuntu:24.04 --build-arg ORT_INSTALL=skip ...
#
# GPU: onnxruntime-node bundles the CPU execution provider only; its install script fetches the CUDA 12 EP
# (libonnxruntime_providers_cuda.so) at `npm rebuild` time when asked (ONNXRUNTIME_NODE_INSTALL=cuda12, which outranks .npmrc). The base
# image brings the CUDA 12 + cuDNN 9 runtime libraries it links against; the host needs the NVIDIA driver and the
# NVIDIA device plugin (nvidia.com/gpu resources). Stages pick the EP and device with UVIT_EP=cuda / UVIT_DEVICE_ID.
ARG BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS node

FROM ${BASE} AS runtime
ARG ORT_INSTALL=cuda12
# Node 22 (>= 22.18: runs the TypeScript sources natively, no build step) from the official image.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Production dependencies only (--omit=dev: no wrangler, vitest, typescript or node binary; the client workspace is not
# copied, so it is skipped). --ignore-scripts, then only onnxruntime-node's own install step runs, with the CUDA EP
# when ORT_INSTALL=cuda12.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && ONNXRUNTIME_NODE_INSTALL=${ORT_INSTALL} npm rebuild onnxruntime-node \
 && npm cache clean --force

COPY bin ./bin
COPY shared ./shared
COPY gpu-backend ./gpu-backend
RUN chmod +x bin/*.js && ln -s /app/bin/uvit.js /usr/local/bin/uvit

# ffmpeg from the distribution (the @ffmpeg-installer binary is for dev machines).
ENV NODE_ENV=production \
    UVIT_FFMPEG=/usr/bin/ffmpeg \
    UVIT_FFPROBE=/usr/bin/ffprobe \
    UVIT_EP=cuda \
    UVIT_DEVICE_ID=0
USER 1000:1000
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["uvit", "--help"]
