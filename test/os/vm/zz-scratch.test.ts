import { it } from "vitest";
import { nodeHost } from "../../../src/host/node-host.js";
import { LocalStore } from "../../../src/store/local-store.js";
import { buildSystem } from "../../../src/os/eval-config.js";
it("build", async () => {
  const host = nodeHost();
  const store = new LocalStore({ host, root: "/tmp/kt/store" });
  const lines: string[] = [];
  try {
    const sys = await buildSystem({ host, store, log: (l) => lines.push(l) }, { configuration: "/tmp/kt/e2e/vm-config.nix", pkgs: "/work/main/nix/pkgs/default.nix" });
    console.log(sys.outPath);
    console.log(new TextDecoder().decode(host.fs.readFile("/tmp/kt/store" + sys.outPath + "/tsnix-system.json")).slice(0, 3000));
  } catch (e) { console.log("ERR", e); }
  console.log(lines.join("\n"));
}, 120000);
