# caplab in a container: built in a Rust image, run from a slim Debian image as a non-root
# user. docker-compose.yml builds it for app_cp and app_ap (`caplab serve`, configured by env).

FROM rust:1-bookworm AS build
WORKDIR /src
# The manifest names the benches, so they come along; tests and examples are not needed.
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
RUN cargo build --release --locked --bin caplab

FROM debian:bookworm-slim
# libssl3: caplab links OpenSSL (through reqwest); curl: the compose healthchecks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin caplab \
    && mkdir -p /var/lib/caplab && chown caplab /var/lib/caplab && chmod 0700 /var/lib/caplab
# /var/lib/caplab: AP's queue file (compose mounts the ap_queue volume there; a new named
# volume takes this directory's owner, so the unprivileged user can write it).
COPY --from=build /src/target/release/caplab /usr/local/bin/caplab
USER caplab
EXPOSE 5001 5002
ENTRYPOINT ["caplab"]
CMD ["serve"]
