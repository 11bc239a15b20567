import { it } from "vitest";
import { nodeHost } from "../../../src/host/node-host.js";
import { runVm } from "../../../src/os/vm/runner.js";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readlinkSync } from "node:fs";
it("vm", async () => {
  const host = nodeHost();
  const vm = await runVm({ host, toplevel: readlinkSync("/tmp/kt/sys"), storeDir: "/nix/store", storePhysical: "/tmp/kt/store/nix/store", hostName: "vmtest", diskImage: "/tmp/kt/vmtest.img", forwardPorts: [{ from: "host", hostPort: 2222, guestPort: 22 }], console: (l) => console.log(l) });
  await new Promise((r) => setTimeout(r, 1000));
  try {
    console.log((await promisify(execFile)("ssh", ["-p", "2222", "-i", "/tmp/kt/k", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "alice@127.0.0.1", "hostname; id; which hello; hello"], { encoding: "utf8", timeout: 15000 })).stdout);
  } catch (e) { console.log("ssh failed", (e as any).stderr?.toString()); }
  console.log(vm.statuses());
  await vm.stop();
}, 60000);
