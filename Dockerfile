# syntax=docker/dockerfile:1
# Multi-stage build: a static, pure-Go binary (SQLite is compiled in, no cgo)
# on a distroless base, running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/handoverd ./cmd/handoverd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/handoverd /usr/local/bin/handoverd
USER 65532:65532
WORKDIR /var/lib/handoverd
EXPOSE 8080
ENV HANDOVERD_CONFIG=/etc/handoverd/handoverd.yaml
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["/usr/local/bin/handoverd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/handoverd"]
CMD ["serve"]
