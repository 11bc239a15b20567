// A static file server for binary-cache tests, in its own process so that
// synchronous Nix invocations in the test cannot starve it. Prints its port.
import { createServer } from "node:http";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, normalize } from "node:path";

const root = normalize(process.argv[2]);
const server = createServer((req, res) => {
  const p = normalize(join(root, decodeURIComponent((req.url ?? "/").split("?")[0])));
  if (!p.startsWith(root) || !existsSync(p) || !statSync(p).isFile()) {
    res.statusCode = 404;
    res.end();
    return;
  }
  res.end(readFileSync(p));
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
