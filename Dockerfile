# The service as it runs in production: Node 24 runs the TypeScript sources as they are (no build
# step), with production dependencies only. Build: docker build -t imgur-upload-service .

# Dependencies are installed in their own stage so that npm's cache and logs never reach the image.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev also skips the `node` devDependency (the image has its own Node 24). No production
# dependency needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV HOST=0.0.0.0 PORT=3000 SANDBOX_PORT=3001
WORKDIR /app
# Owned by root and only readable by the `node` user: the process cannot rewrite its own code.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY public ./public
COPY src ./src
USER node
EXPOSE 3000 3001
# Node itself does the check: the image needs no curl or wget.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# `node` directly, never `npm start`: npm does not forward SIGTERM. As PID 1, Node gets no default
# signal handlers, but server.ts installs its own for SIGTERM and SIGINT and drains the queue.
CMD ["node", "--max-semi-space-size=4", "src/server.ts"]
