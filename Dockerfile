# syntax=docker/dockerfile:1
# The predictive autoscaler's image: `docker build -t predictive-autoscaler:0.1.0 .`
#
# Two stages: the builder installs the package from this checkout into a virtualenv; the
# final stage copies only that virtualenv onto the same slim base (so its interpreter path
# stays valid) and runs as a numeric non-root user. No compiler, pip cache or source tree
# in the final image. Every dependency ships manylinux wheels for CPython 3.11, so the
# builder needs no compiler either.
#
# The base is pinned by digest (a tag moves: the same build would silently get another OS
# and interpreter). Refresh it deliberately, e.g. monthly for Debian's security fixes:
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
# and put the tag and the digest printed below (the multi-arch index digest).
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
WORKDIR /src
# The dependencies from the lock, each checked against its hashes (what was tested is what
# ships; README "Install in a cluster" says how the lock is refreshed), then the package
# alone.
COPY deploy/requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY autoscaler ./autoscaler
COPY predictors ./predictors
# Not editable: the package lands in the venv's site-packages, byte-compiled by pip there
# (the final image's root file system is read-only, so nothing is compiled at run time).
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/autoscaler --version

FROM ${PYTHON_IMAGE}
# Where the image came from: docker build --build-arg REVISION=$(git rev-parse HEAD) .
ARG REVISION=unknown
ARG SOURCE=https://github.com/predictive-autoscaler/predictive-autoscaler
LABEL org.opencontainers.image.title="predictive-autoscaler" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.description="Predictive autoscaler for Kafka consumers on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
# 65532: the conventional "nonroot" UID (distroless); deploy/base/deployment.yaml runs as it.
RUN groupadd --system --gid 65532 autoscaler \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin autoscaler
COPY --from=builder /opt/venv /opt/venv
# AUTOSCALER_REVISION: what `autoscaler version` prints as the commit (no git in the image).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    AUTOSCALER_REVISION="${REVISION}"
USER 65532:65532
WORKDIR /tmp
# server.health_port (/healthz, /readyz, /status) and server.metrics_port (/metrics).
EXPOSE 8080 9090
# The config comes from the ConfigMap deploy/ mounts at /etc/autoscaler. Any other command:
# `docker run IMAGE validate /etc/autoscaler/config.yaml`.
ENTRYPOINT ["autoscaler"]
CMD ["run", "--config", "/etc/autoscaler/config.yaml"]
