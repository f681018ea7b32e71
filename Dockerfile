# syntax=docker/dockerfile:1
# Multi-stage: a static, trimmed binary on distroless, non-root (uid 65532). The policy library is inside the binary.
# The image holds the full build (no `-tags lean`): it serves, so it needs everything the lean CLI hands over.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/attest ./cmd/attest

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/attest /attest
USER 65532:65532
ENTRYPOINT ["/attest"]
CMD ["serve", "--cert-dir=/tls", "--config=/config/policies.yaml"]
