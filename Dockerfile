# syntax=docker/dockerfile:1
#
# The Cyrcles programs in one image: cyrcles-bridge (the default command),
# cyrcles-demo (a demo website) and cyrcles (the agent).
#
#   docker build -t cyrcles .
#   docker run -p 8080:8080 -p 4001:4001 -v cyrcles-data:/var/lib/cyrcles cyrcles
#
# Configure the bridge with CYRCLES_BRIDGE_* variables (see
# deploy/bridge.example.toml), or mount a file and set CYRCLES_BRIDGE_CONFIG.
# docker-compose.yml runs it with PostgreSQL and the demo site.

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The registry and the target directory are cache mounts (BuildKit, the
# default builder since Docker 23), so rebuilds after a source change only
# compile what changed; the binaries are copied out of the cache to /out in
# the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cyrcles-bridge -p cyrcles-demo -p cyrcles-agent \
    && mkdir -p /out \
    && cp target/release/cyrcles-bridge target/release/cyrcles-demo target/release/cyrcles /out/

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim
# CA certificates for outgoing https (a demo site fetching an https issuer).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# An unprivileged user owning the data directory. The directory exists
# before VOLUME so a new named volume starts with this owner and mode.
RUN groupadd --system --gid 10001 cyrcles \
    && useradd --system --uid 10001 --gid cyrcles --home-dir /var/lib/cyrcles \
        --no-create-home --shell /usr/sbin/nologin cyrcles \
    && install -d -o cyrcles -g cyrcles -m 0700 /var/lib/cyrcles
COPY --from=builder /out/cyrcles-bridge /out/cyrcles-demo /out/cyrcles /usr/local/bin/

# The bridge listens on all interfaces inside the container (publish the
# port to choose who reaches it) and keeps its files in the volume: the
# SQLite database unless CYRCLES_BRIDGE_DATABASE_URL names PostgreSQL, the
# master key and the p2p identity key.
ENV CYRCLES_BRIDGE_HTTP_LISTEN=0.0.0.0:8080 \
    CYRCLES_BRIDGE_DATA_DIR=/var/lib/cyrcles
USER 10001:10001
WORKDIR /var/lib/cyrcles
VOLUME ["/var/lib/cyrcles"]
# 8080: the bridge's HTTP; 4001: its libp2p TCP (DHT and relay);
# 3000: cyrcles-demo.
EXPOSE 8080 4001 3000
CMD ["cyrcles-bridge", "serve"]
