# syntax=docker/dockerfile:1
#
# etcd-gateway as a container image: a static binary (CGO_ENABLED=0) on a
# minimal base with CA certificates and nothing else, running as a non-root
# user (65532, as the DaemonSet in examples/kubernetes expects).
#
#   docker build --build-arg VERSION=0.1.0 -t etcd-gateway:0.1.0 .
#   docker run --rm etcd-gateway:0.1.0 version
#
# VERSION is stamped into the binary (`etcd-gateway version`, /status, the
# build_info metric); without it the binary says which revision it is.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first: a change of the code alone reuses this layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
ARG TARGETOS=linux
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w -X github.com/etcd-gateway/etcd-gateway/internal/buildinfo.release=${VERSION}" \
      -o /out/etcd-gateway .

# distroless/static: CA certificates, /etc/passwd with the nonroot user
# (65532), tzdata; no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=""
LABEL org.opencontainers.image.title="etcd-gateway" \
      org.opencontainers.image.description="A transparent TCP gateway in front of etcd clusters" \
      org.opencontainers.image.source="https://github.com/etcd-gateway/etcd-gateway" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/etcd-gateway /usr/local/bin/etcd-gateway
USER 65532:65532
# The listeners' and the admin server's usual ports; nothing is published
# by this alone.
EXPOSE 23790 23800
ENTRYPOINT ["/usr/local/bin/etcd-gateway"]
CMD ["start", "--config", "/etc/etcd-gateway/etcd-gateway.yaml"]
