// A plain HTTP request sent to a TLS port (`curl http://…`, a probe without `scheme: HTTPS`):
// OpenSSL refuses the handshake, and the client is told why in plain text on the TCP connection
// under the TLS one, as Go's TLS server tells it, instead of "empty reply from server". For the
// listener (https.ts) and the server that sheds connections past the bound (connection-shed.ts).
import net, { type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";

/** What a plain HTTP request to the TLS port is answered, as Go's TLS server answers it. */
export const PLAIN_HTTP_ANSWER =
  "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
  "Client sent an HTTP request to an HTTPS server.\n";

/** The TCP connection under a server-side TLS socket (Node keeps it as `_parent`). */
export function tcpOf(socket: Duplex): Socket | undefined {
  const raw = (socket as Duplex & { readonly _parent?: unknown })._parent;
  return raw instanceof net.Socket ? raw : undefined;
}

/** For `tlsClientError`: a refused handshake that was a plain HTTP request is answered so. */
export function answerPlainHttp(err: NodeJS.ErrnoException, socket: TLSSocket): void {
  if (err.code !== "ERR_SSL_HTTP_REQUEST") return;
  const raw = tcpOf(socket);
  if (raw !== undefined && !raw.destroyed && raw.writable) raw.end(PLAIN_HTTP_ANSWER);
}
