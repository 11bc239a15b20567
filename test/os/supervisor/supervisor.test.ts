import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { memoryHost, type MemoryProgram } from "../../../src/host/memory-host.js";
import { nodeHost } from "../../../src/host/node-host.js";
import type { Host } from "../../../src/host/host.js";
import { loadUnits, planStart } from "../../../src/os/supervisor/order.js";
import { Supervisor, type SupervisorEvent } from "../../../src/os/supervisor/supervisor.js";
import { HOSTS } from "../../helpers/hosts.js";

function writeUnits(host: Host, dir: string, units: Record<string, string>): void {
  host.fs.mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(units)) {
    if (name.includes("/")) host.fs.mkdir(`${dir}/${name.slice(0, name.lastIndexOf("/"))}`, { recursive: true });
    host.fs.writeFile(`${dir}/${name}`, text);
  }
}

/** Waits (bounded) until `cond` holds. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each(HOSTS)("unit loading and start order ($name host)", ({ make }) => {
  it("pulls units in through WantedBy, .wants directories, Wants and Requires, ordered by After/Before", () => {
    const f = make();
    try {
      const dir = `${f.dir}/etc/systemd/system`;
      writeUnits(f.host, dir, {
        "a.service": "[Unit]\nAfter=b.service\nRequires=b.service\n[Service]\nExecStart=/bin/a\n[Install]\nWantedBy=multi-user.target\n",
        "b.service": "[Unit]\nAfter=c.service\n[Service]\nExecStart=/bin/b\n",
        "c.service": "[Unit]\nBefore=b.service\n[Service]\nExecStart=/bin/c\n",
        "d.service": "[Unit]\nBefore=a.service\nWants=ghost.service\n[Service]\nExecStart=/bin/d\n",
        "unused.service": "[Service]\nExecStart=/bin/unused\n",
        "multi-user.target": "[Unit]\nDescription=Multi-User System\n",
        "multi-user.target.wants/c.service": "",
        "multi-user.target.wants/d.service": "",
      });
      // The .wants entries name units; their content does not matter.
      const set = loadUnits(f.host.fs, dir);
      expect([...set.units.keys()].sort()).toEqual(["a.service", "b.service", "d.service", "multi-user.target", "unused.service"].concat("c.service").sort());
      const plan = planStart(set);
      expect(plan.order.filter((n) => n.endsWith(".service"))).toEqual(["c.service", "b.service", "d.service", "a.service"]);
      expect(plan.missing).toEqual(["ghost.service"]);
      expect(plan.cycles).toEqual([]);
    } finally {
      f.dispose();
    }
  });

  it("reports an ordering cycle and still orders every unit", () => {
    const f = make();
    try {
      const dir = `${f.dir}/u`;
      writeUnits(f.host, dir, {
        "x.service": "[Unit]\nAfter=y.service\n[Service]\nExecStart=/bin/x\n[Install]\nWantedBy=multi-user.target\n",
        "y.service": "[Unit]\nAfter=x.service\n[Service]\nExecStart=/bin/y\n[Install]\nWantedBy=multi-user.target\n",
      });
      const plan = planStart(loadUnits(f.host.fs, dir));
      expect(plan.cycles.length).toBe(1);
      expect([...plan.order].sort()).toEqual(["multi-user.target", "x.service", "y.service"]);
    } finally {
      f.dispose();
    }
  });
});

describe("start order (property)", () => {
  it("every After=/Before= edge of an acyclic unit graph is respected, and exactly the pulled-in units start", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            // Edges i -> j only for i < j keep the graph acyclic; a permutation hides that order from the names.
            edges: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1), fc.boolean()), { maxLength: 20 }),
            perm: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
            wanted: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
            wants: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 10 }),
          }),
        ),
        ({ n, edges, perm, wanted, wants }) => {
          const name = (i: number) => `u${perm[i]}.service`;
          const after = new Map<number, Set<number>>();
          const before = new Map<number, Set<number>>();
          const order: [number, number][] = [];
          for (const [a, b, asBefore] of edges) {
            const [x, y] = a < b ? [a, b] : [b, a];
            if (x === y) continue;
            order.push([x, y]);
            // x starts before y, said either on y (After=x) or on x (Before=y).
            if (asBefore) (before.get(x) ?? before.set(x, new Set()).get(x)!).add(y);
            else (after.get(y) ?? after.set(y, new Set()).get(y)!).add(x);
          }
          const wantMap = new Map<number, number[]>();
          for (const [a, b] of wants) if (a !== b) wantMap.set(a, [...(wantMap.get(a) ?? []), b]);
          const host = memoryHost({ files: { "/u": null } });
          for (let i = 0; i < n; i++) {
            const lines = ["[Unit]"];
            if (after.has(i)) lines.push(`After=${[...after.get(i)!].map(name).join(" ")}`);
            if (before.has(i)) lines.push(`Before=${[...before.get(i)!].map(name).join(" ")}`);
            if (wantMap.has(i)) lines.push(`Wants=${wantMap.get(i)!.map(name).join(" ")}`);
            lines.push("[Service]", `ExecStart=/bin/u${i}`);
            if (wanted[i]) lines.push("[Install]", "WantedBy=multi-user.target");
            host.fs.writeFile(`/u/${name(i)}`, `${lines.join("\n")}\n`);
          }
          const plan = planStart(loadUnits(host.fs, "/u"));
          expect(plan.cycles).toEqual([]);
          // Reachable: wanted units and what they want, transitively.
          const reach = new Set<number>();
          const stack = [...Array(n).keys()].filter((i) => wanted[i]);
          while (stack.length > 0) {
            const i = stack.pop()!;
            if (reach.has(i)) continue;
            reach.add(i);
            stack.push(...(wantMap.get(i) ?? []));
          }
          const services = plan.order.filter((u) => u.endsWith(".service"));
          expect(new Set(services)).toEqual(new Set([...reach].map(name)));
          const pos = new Map(services.map((u, k) => [u, k]));
          for (const [x, y] of order) if (reach.has(x) && reach.has(y)) expect(pos.get(name(x))!).toBeLessThan(pos.get(name(y))!);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("Supervisor on the memory host", () => {
  function setup(units: Record<string, string>, programs: Record<string, MemoryProgram>) {
    const host = memoryHost({ files: { "/etc/systemd/system": null }, programs });
    writeUnits(host, "/etc/systemd/system", units);
    const lines: string[] = [];
    const events: SupervisorEvent[] = [];
    const sup = new Supervisor({
      host,
      units: loadUnits(host.fs, "/etc/systemd/system"),
      console: (l) => lines.push(l),
      onEvent: (e) => events.push(e),
      baseEnv: { PATH: "/bin" },
    });
    return { host, sup, lines, events };
  }
  const forever: MemoryProgram = (ctx) =>
    new Promise((res) => {
      ctx.stdout(`up ${ctx.args.join(" ")} ${ctx.env["GREETING"] ?? ""}\n`);
      ctx.signal.addEventListener("abort", () => res(0));
    });

  it("runs ExecStartPre then ExecStart with Environment and expanded arguments, logs lines, stops in reverse order", async () => {
    const order: string[] = [];
    const { sup, lines } = setup(
      {
        "web.service": '[Unit]\nDescription=Web\nAfter=db.service\nRequires=db.service\n[Service]\nEnvironment="GREETING=hello there" PORT=80\nExecStartPre=/bin/prep web\nExecStart=/bin/daemon --port $PORT\n[Install]\nWantedBy=multi-user.target\n',
        "db.service": "[Unit]\nDescription=Db\n[Service]\nExecStart=/bin/daemon db\n",
      },
      {
        "/bin/prep": (ctx) => {
          order.push(`prep ${ctx.args[0]}`);
          return 0;
        },
        "/bin/daemon": (ctx) => {
          order.push(`daemon ${ctx.args.join(" ")}`);
          return forever(ctx);
        },
      },
    );
    await sup.start();
    expect(order).toEqual(["daemon db", "prep web", "daemon --port 80"]);
    await until(() => lines.some((l) => /^web\[\d+\]: up --port 80 hello there$/.test(l)));
    expect(sup.status("web.service")?.state).toBe("active");
    expect(sup.status("db.service")?.state).toBe("active");
    await sup.stop();
    const stops = lines.filter((l) => l.startsWith("Stopped "));
    expect(stops).toEqual(["Stopped Web.", "Stopped Db."]);
    expect(sup.status("web.service")?.state).toBe("inactive");
  });

  it("a failing service is reported with its log while the others keep running; Requires= dependents fail, Wants= ones start", async () => {
    const { sup, lines, events } = setup(
      {
        "bad.service": "[Unit]\nDescription=Bad\n[Service]\nExecStart=/bin/bad\n[Install]\nWantedBy=multi-user.target\n",
        "needs-bad.service": "[Unit]\nAfter=bad.service\nRequires=bad.service\n[Service]\nExecStart=/bin/good\n[Install]\nWantedBy=multi-user.target\n",
        "good.service": "[Unit]\nDescription=Good\nAfter=bad.service\nWants=bad.service\n[Service]\nExecStart=/bin/good\n[Install]\nWantedBy=multi-user.target\n",
      },
      {
        "/bin/bad": async (ctx) => {
          ctx.stderr("bad: cannot open /etc/bad.conf: No such file or directory\n");
          await new Promise((r) => setTimeout(r, 20));
          return 3;
        },
        "/bin/good": forever,
      },
    );
    await sup.start();
    await until(() => sup.status("bad.service")?.state === "failed");
    expect(sup.status("bad.service")?.result).toBe("exit-code");
    const failed = events.find((e) => e.type === "failed" && e.unit === "bad.service");
    expect(failed).toMatchObject({ log: ["bad: cannot open /etc/bad.conf: No such file or directory"] });
    expect(lines).toContain("bad.service: Main process exited, code=exited, status=3/FAILURE");
    expect(lines).toContain("  bad: cannot open /etc/bad.conf: No such file or directory");
    expect(sup.status("good.service")?.state).toBe("active");
    await sup.stop();
  });

  it("a failing ExecStartPre fails the unit without running ExecStart; '-' ignores a failure", async () => {
    const ran: string[] = [];
    const { sup } = setup(
      {
        "p.service": "[Service]\nExecStartPre=/bin/fail\nExecStart=/bin/main p\n[Install]\nWantedBy=multi-user.target\n",
        "q.service": "[Service]\nExecStartPre=-/bin/fail\nExecStart=/bin/main q\n[Install]\nWantedBy=multi-user.target\n",
      },
      {
        "/bin/fail": () => 1,
        "/bin/main": (ctx) => {
          ran.push(ctx.args[0]!);
          return forever(ctx);
        },
      },
    );
    await sup.start();
    expect(ran).toEqual(["q"]);
    expect(sup.status("p.service")?.state).toBe("failed");
    expect(sup.status("q.service")?.state).toBe("active");
    await sup.stop();
  });

  it("Restart=on-failure restarts after RestartSec until the start limit", async () => {
    let runs = 0;
    const { sup, lines } = setup(
      { "flaky.service": "[Service]\nExecStart=/bin/flaky\nRestart=on-failure\nRestartSec=10ms\n[Install]\nWantedBy=multi-user.target\n" },
      {
        "/bin/flaky": () => {
          runs++;
          return 1;
        },
      },
    );
    await sup.start();
    await until(() => sup.status("flaky.service")?.state === "failed");
    expect(runs).toBe(5);
    expect(sup.status("flaky.service")).toMatchObject({ result: "start-limit-hit", restarts: 5 });
    expect(lines).toContain("flaky.service: Start request repeated too quickly.");
    await sup.stop();
  });

  it("Restart=always brings a crashed service back; Restart=no leaves a clean exit inactive", async () => {
    let n = 0;
    const { sup } = setup(
      {
        "crash.service": "[Service]\nExecStart=/bin/crash\nRestart=always\nRestartSec=0\n[Install]\nWantedBy=multi-user.target\n",
        "once.service": "[Service]\nExecStart=/bin/ok\n[Install]\nWantedBy=multi-user.target\n",
      },
      {
        "/bin/crash": (ctx) => (++n === 1 ? 0 : forever(ctx)),
        "/bin/ok": () => 0,
      },
    );
    await sup.start();
    await until(() => sup.status("crash.service")?.restarts === 1 && sup.status("crash.service")?.state === "active");
    await until(() => sup.status("once.service")?.state === "inactive");
    expect(sup.status("once.service")?.result).toBe("success");
    await sup.stop();
  });

  it("oneshot units finish before the units ordered after them start", async () => {
    const order: string[] = [];
    const { sup } = setup(
      {
        "setup.service": "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/step one\nExecStart=/bin/step two\n[Install]\nWantedBy=multi-user.target\n",
        "app.service": "[Unit]\nAfter=setup.service\n[Service]\nExecStart=/bin/app\n[Install]\nWantedBy=multi-user.target\n",
      },
      {
        "/bin/step": async (ctx) => {
          await new Promise((r) => setTimeout(r, 10));
          order.push(ctx.args[0]!);
          return 0;
        },
        "/bin/app": (ctx) => {
          order.push("app");
          return forever(ctx);
        },
      },
    );
    await sup.start();
    expect(order).toEqual(["one", "two", "app"]);
    expect(sup.status("setup.service")?.state).toBe("active");
    await sup.stop();
  });

  it("User=/Group= run through the runAs wrapper; without one such units are refused", async () => {
    const ran: string[][] = [];
    const host = memoryHost({
      files: { "/u": null },
      programs: {
        "/bin/as": (ctx) => {
          ran.push([...ctx.args]);
          return 0;
        },
      },
    });
    writeUnits(host, "/u", { "svc.service": "[Service]\nType=oneshot\nUser=alice\nGroup=staff\nExecStart=/bin/tool --flag\n[Install]\nWantedBy=multi-user.target\n" });
    const lines: string[] = [];
    const sup = new Supervisor({ host, units: loadUnits(host.fs, "/u"), console: (l) => lines.push(l), runAs: (u, g, argv) => ["/bin/as", u, g ?? "-", ...argv] });
    await sup.start();
    expect(ran).toEqual([["alice", "staff", "/bin/tool", "--flag"]]);
    const refused = new Supervisor({ host, units: loadUnits(host.fs, "/u"), console: (l) => lines.push(l) });
    await refused.start();
    expect(refused.status("svc.service")?.state).toBe("failed");
    expect(lines.some((l) => l.includes("cannot run as User=alice Group=staff"))).toBe(true);
  });

  it("a missing executable fails its unit (status 203) and the others start", async () => {
    const { sup, lines } = setup(
      {
        "ghost.service": "[Service]\nExecStart=/nix/store/none/bin/ghost\n[Install]\nWantedBy=multi-user.target\n",
        "real.service": "[Service]\nExecStart=/bin/real\n[Install]\nWantedBy=multi-user.target\n",
      },
      { "/bin/real": forever },
    );
    await sup.start();
    await until(() => sup.status("ghost.service")?.state === "failed");
    expect(lines.some((l) => l.includes("ghost") && l.includes("Failed to execute"))).toBe(true);
    expect(sup.status("real.service")?.state).toBe("active");
    await sup.stop();
  });
});

describe("Supervisor on the node host (real processes)", () => {
  it("runs shell services, kills a TERM-ignoring one after TimeoutStopSec, and leaves no process behind", async () => {
    const host = nodeHost();
    const dir = host.fs.mkdtemp(`${host.tmpdir()}/tsnix-sup-`);
    try {
      writeUnits(host, `${dir}/units`, {
        "echo.service": `[Service]\nEnvironment=WHO=world\nExecStart=/bin/sh -c 'echo hello $WHO; echo err >&2; exec sleep 60'\n[Install]\nWantedBy=multi-user.target\n`,
        "stubborn.service": `[Service]\nTimeoutStopSec=300ms\nExecStart=/bin/sh -c 'trap "" TERM; echo ready; while :; do sleep 0.05; done'\n[Install]\nWantedBy=multi-user.target\n`,
        "fails.service": `[Service]\nExecStart=/bin/sh -c 'echo "config error on line 3" >&2; exit 2'\n[Install]\nWantedBy=multi-user.target\n`,
      });
      const lines: string[] = [];
      const sup = new Supervisor({ host, units: loadUnits(host.fs, `${dir}/units`), console: (l) => lines.push(l), baseEnv: { PATH: "/usr/bin:/bin" } });
      await sup.start();
      await until(() => lines.some((l) => /^echo\[\d+\]: hello world$/.test(l)) && lines.some((l) => /^stubborn\[\d+\]: ready$/.test(l)));
      await until(() => sup.status("fails.service")?.state === "failed");
      expect(sup.status("fails.service")?.log).toEqual(["config error on line 3"]);
      expect(lines.some((l) => /^echo\[\d+\]: err$/.test(l))).toBe(true);
      const pids = [sup.status("echo.service")!.mainPid!, sup.status("stubborn.service")!.mainPid!];
      await sup.stop();
      expect(lines).toContain("stubborn.service: State 'stop-sigterm' timed out. Killing.");
      for (const p of pids) expect(host.processAlive(p)).toBe(false);
    } finally {
      host.fs.rm(dir, { recursive: true, force: true });
    }
  });
});
