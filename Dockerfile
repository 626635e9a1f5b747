# One image for every Goterra service: `goterra serve <service>` (docker-compose.yml), or
# `goterra up` for the all-in-one platform. Build arguments choose the infrastructure-as-code
# binary the run agents execute:
#
#     docker build --build-arg GOT_IAC=opentofu --build-arg GOT_IAC_VERSION=1.8.5 -t goterra .

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && mkdir /out \
 && cp target/release/goterra target/release/goterra-* /out/ \
 && rm -f /out/*.d

# Terraform or OpenTofu, verified against the vendor's published SHA-256 sums.
FROM debian:bookworm-slim AS iac
ARG GOT_IAC=terraform
ARG GOT_IAC_VERSION=1.9.8
ARG TARGETARCH=amd64
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl unzip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /tmp/iac
RUN set -eu; \
    case "$GOT_IAC" in \
      terraform) name=terraform; base="https://releases.hashicorp.com/terraform/${GOT_IAC_VERSION}"; \
                 zip="terraform_${GOT_IAC_VERSION}_linux_${TARGETARCH}.zip"; sums="terraform_${GOT_IAC_VERSION}_SHA256SUMS" ;; \
      opentofu)  name=tofu; base="https://github.com/opentofu/opentofu/releases/download/v${GOT_IAC_VERSION}"; \
                 zip="tofu_${GOT_IAC_VERSION}_linux_${TARGETARCH}.zip"; sums="tofu_${GOT_IAC_VERSION}_SHA256SUMS" ;; \
      *) echo "GOT_IAC must be terraform or opentofu, not '$GOT_IAC'" >&2; exit 1 ;; \
    esac; \
    curl -fsSLO "$base/$zip"; curl -fsSLO "$base/$sums"; \
    grep " $zip\$" "$sums" | sha256sum -c -; \
    unzip -q "$zip" "$name"; install -m 0755 "$name" /usr/local/bin/iac

FROM debian:bookworm-slim
# curl serves the compose health checks; git lets templates use git module sources.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/goterra goterra
COPY --from=build /out/ /usr/local/bin/
COPY --from=iac /usr/local/bin/iac /usr/local/bin/iac
ENV GOT_TERRAFORM_BIN=/usr/local/bin/iac \
    GOT_LISTEN=0.0.0.0:8000 \
    GOT_DATA_DIR=/var/lib/goterra/data
USER goterra
WORKDIR /var/lib/goterra
EXPOSE 8000
ENTRYPOINT ["goterra"]
CMD ["up"]
