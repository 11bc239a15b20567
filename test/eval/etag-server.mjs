// A static file server that answers with an ETag (the SHA-256 of the file)
// and honours If-None-Match with 304, logging each request to stdout as
// "GET PATH if-none-match=TAG|- -> STATUS [ETAG]". In its own process, so
// that a synchronous download in the test process gets its answer.
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, normalize } from "node:path";

const root = normalize(process.argv[2]);
const server = createServer((req, res) => {
  const p = normalize(join(root, decodeURIComponent((req.url ?? "/").split("?")[0])));
  const inm = req.headers["if-none-match"] ?? "-";
  if (!p.startsWith(root) || !existsSync(p)) {
    res.statusCode = 404;
    res.end();
    process.stdout.write(`GET ${req.url} if-none-match=${inm} -> 404\n`);
    return;
  }
  const body = readFileSync(p);
  const tag = `"${createHash("sha256").update(body).digest("hex").slice(0, 16)}"`;
  if (inm === tag) {
    res.statusCode = 304;
    res.end();
    process.stdout.write(`GET ${req.url} if-none-match=${inm} -> 304\n`);
    return;
  }
  res.setHeader("ETag", tag);
  res.end(body);
  process.stdout.write(`GET ${req.url} if-none-match=${inm} -> 200 ${tag}\n`);
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
