# Multi-stage build: a static, non-root image with the worker and the CLI.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X github.com/opsworker/opsworker/internal/buildinfo.version=${VERSION}" -o /out/worker ./cmd/worker \
 && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X github.com/opsworker/opsworker/internal/buildinfo.version=${VERSION}" -o /out/enqueue ./cmd/enqueue

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="opsworker" \
      org.opencontainers.image.description="Runs infrastructure operations (CDN purges, server installs, snapshots, scaling) from a Redis queue, with signed webhooks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/opsworker/opsworker"
COPY --from=build /out/worker /usr/local/bin/opsworker-worker
COPY --from=build /out/enqueue /usr/local/bin/enqueue
COPY config/example.yaml /etc/opsworker/example.yaml
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/opsworker-worker"]
CMD ["--config", "/etc/opsworker/config.yaml"]
