/**
 * A plain HTTP client for tests over real sockets (node:http, no agent so
 * every request is its own connection), and a reader for the Prometheus
 * text format that /metrics answers.
 */
import { request } from 'node:http';

export interface HttpReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

export interface FetchOptions {
  readonly body?: string;
  /** Source address of the connection (e.g. 127.0.0.2 to test the admin-network rule). */
  readonly localAddress?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export function fetchFrom(port: number, method: string, target: string, options: FetchOptions = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: target,
        headers: { ...(options.body === undefined ? {} : { 'content-type': 'text/xml' }), ...options.headers },
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Series values by `name{labels}` exactly as printed (`maildird_x_total{proto="pop3"}`), from a 0.0.4 text page. */
export function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}
