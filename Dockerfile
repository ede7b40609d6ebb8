# Build a static binary, run it as a non-root user on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# scripts/build.sh --docker passes these from git; `portvakt version` prints them.
# Without them the binary says "devel" (the build context has no .git).
ARG VERSION=devel
ARG COMMIT=
ARG DATE=
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
    -o /out/portvakt ./cmd/portvakt

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/portvakt /usr/local/bin/portvakt
USER nonroot:nonroot
WORKDIR /home/nonroot
ENV PORTVAKT_LISTEN=0.0.0.0:8080 PORTVAKT_OPS_LISTEN=0.0.0.0:8081 PORTVAKT_DATA_DIR=/home/nonroot/data
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/portvakt"]
CMD ["serve", "--config", "/etc/portvakt/portvakt.yaml"]
