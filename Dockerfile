# Builds the `vectis` binary and runs it on a slim Debian image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin vectis

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/vectis vectis \
    && mkdir -p /var/lib/vectis && chown vectis /var/lib/vectis
COPY --from=build /src/target/release/vectis /usr/local/bin/vectis
USER vectis
WORKDIR /var/lib/vectis
EXPOSE 8080
ENTRYPOINT ["vectis"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
