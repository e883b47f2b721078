# Builds the `vectis` and `vectis-consumer` binaries and runs them on a slim Debian image
# (the entrypoint is `vectis`; the consumer service overrides it).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin vectis --bin vectis-consumer

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/vectis vectis \
    && mkdir -p /var/lib/vectis && chown vectis /var/lib/vectis
COPY --from=build /src/target/release/vectis /src/target/release/vectis-consumer /usr/local/bin/
USER vectis
WORKDIR /var/lib/vectis
EXPOSE 8080
ENTRYPOINT ["vectis"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
