// An HTTPS server that never listens: its connections are accepted by someone else (a front
// listener, a worker's primary) and handed to it with `server.emit("connection", socket)`.
//
// Node enforces `requestTimeout` and `headersTimeout` from a timer its HTTP server starts when it
// begins to listen (every `connectionsCheckingInterval`). Without that timer a client that never
// finishes its headers or its body would keep its connection, and the place it takes under any
// bound on connections, for ever. startTimeoutChecks starts it the way listening does: by the
// `listening` event, which nothing else here listens to. The handed-connection tests
// (test/unit/workers/handed.test.ts) fail if a Node release moves the timer elsewhere.
import type https from "node:https";

export function startTimeoutChecks(server: https.Server): void {
  server.emit("listening");
}
