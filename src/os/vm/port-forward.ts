/**
 * Port forwarding from the host's loopback into the VM, which has no network
 * but its own loopback (NixOS's `virtualisation.forwardPorts` with
 * `from = "host"`). The host side listens on 127.0.0.1:<host.port>; each
 * connection is carried over a Unix socket in the VM's runtime directory (a
 * socket file is reachable from any network namespace) to a relay that runs
 * in the VM's network namespace and connects to 127.0.0.1:<guest.port> there.
 * The relay is a few lines of Node run by the host's Node through nsenter, so
 * the VM needs no Node of its own.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { VmError } from "./errors.js";

/** One forwarded port, as NixOS's option declares it. @public */
export interface ForwardPort {
  readonly from: "host" | "guest";
  readonly hostAddress?: string;
  readonly hostPort: number;
  readonly guestAddress?: string;
  readonly guestPort: number;
  readonly proto?: "tcp" | "udp";
}

/**
 * The relay's program (run as `node -e RELAY SOCKET GUESTPORT`): listen on
 * the Unix socket, connect each client to the guest port, pipe both ways.
 * It prints "ready" once listening and exits on SIGTERM.
 * @public
 */
export const RELAY_PROGRAM = `
const net = require("node:net");
const fs = require("node:fs");
const [sock, port, addr] = process.argv.slice(1);
try { fs.unlinkSync(sock); } catch {}
const srv = net.createServer((c) => {
  const g = net.connect({ host: addr || "127.0.0.1", port: Number(port) });
  c.pipe(g); g.pipe(c);
  const end = () => { c.destroy(); g.destroy(); };
  c.on("error", end); g.on("error", end); c.on("close", end); g.on("close", end);
});
srv.listen(sock, () => process.stdout.write("ready\\n"));
process.on("SIGTERM", () => { srv.close(); process.exit(0); });
`;

/** Listen on the host side of every forward now, so a port in use fails before the VM starts. @public */
export async function listenForwards(forwards: readonly ForwardPort[], socketOf: (f: ForwardPort) => string): Promise<HostForwards> {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  try {
    for (const f of forwards) {
      if (f.from !== "host") throw new VmError("forward-unsupported", `port forwarding from the guest (from = "${f.from}") is not supported`, { forward: f });
      if ((f.proto ?? "tcp") !== "tcp") throw new VmError("forward-unsupported", `only TCP ports can be forwarded, not ${f.proto}`, { forward: f });
      const address = f.hostAddress === undefined || f.hostAddress === "" ? "127.0.0.1" : f.hostAddress;
      // The VM is reachable from this machine only: forwards listen on the loopback.
      if (address !== "127.0.0.1" && address !== "localhost")
        throw new VmError("forward-address", `forwarded ports listen on 127.0.0.1 only, not on '${address}'`, { forward: f });
      const server = createServer((client) => {
        sockets.add(client);
        const inner = connect(socketOf(f));
        sockets.add(inner);
        client.pipe(inner);
        inner.pipe(client);
        const end = () => {
          client.destroy();
          inner.destroy();
          sockets.delete(client);
          sockets.delete(inner);
        };
        client.on("error", end);
        inner.on("error", end);
        client.on("close", end);
        inner.on("close", end);
      });
      await new Promise<void>((resolve, reject) => {
        server.once("error", (e: NodeJS.ErrnoException) => {
          if (e.code === "EADDRINUSE")
            reject(new VmError("port-in-use", `cannot forward host port ${f.hostPort} to guest port ${f.guestPort}: 127.0.0.1:${f.hostPort} is already in use`, { hostPort: f.hostPort, guestPort: f.guestPort }));
          else if (e.code === "EACCES")
            reject(new VmError("port-denied", `cannot forward host port ${f.hostPort}: permission denied (ports below 1024 need privileges)`, { hostPort: f.hostPort }));
          else reject(new VmError("port-listen", `cannot listen on 127.0.0.1:${f.hostPort}: ${e.message}`, { hostPort: f.hostPort }, e));
        });
        server.listen({ host: "127.0.0.1", port: f.hostPort, exclusive: true }, () => resolve());
      });
      servers.push(server);
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  return {
    close: async () => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

/** The host side of the forwards; `close` stops listening and drops open connections. @public */
export interface HostForwards {
  close(): Promise<void>;
}
