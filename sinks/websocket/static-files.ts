// Serves a folder of static files (the demo page) on the websocket port.
import { readFile } from 'node:fs/promises';
import { join, normalize, extname, sep } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.png': 'image/png', '.svg': 'image/svg+xml', '.json': 'application/json', '.ico': 'image/x-icon',
};

export async function serveStatic(root: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  let path: string;
  try {
    path = decodeURIComponent((request.url ?? '/').split('?')[0]);
  } catch {
    // "/%", "/%E0%A4%A": not a path any file has.
    response.writeHead(400).end('bad request: malformed percent-encoding\n');
    return;
  }
  const file = normalize(join(root, path === '/' ? 'index.html' : path));
  if (path.includes('\u0000') || !file.startsWith(normalize(root) + sep) || request.method !== 'GET') {
    response.writeHead(404).end('not found\n');
    return;
  }
  try {
    const body = await readFile(file);
    response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' }).end(body);
  } catch {
    response.writeHead(404).end('not found\n');
  }
}
