# Build stage: compile the release binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pica

# Runtime stage: just the binary (SQLite is compiled in; TLS is rustls).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data pica \
 && mkdir -p /data && chown pica /data
COPY --from=build /src/target/release/pica /usr/local/bin/pica
USER pica
WORKDIR /data
ENV PICA_BIND=0.0.0.0:8000 \
    DATABASE_URL=sqlite:///data/pica.db \
    PICA_LOG_FORMAT=json
VOLUME /data
EXPOSE 8000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/pica"]
CMD ["serve"]
