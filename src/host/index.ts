export type { FileStat, FileType, Host, HostFs, HostLock, HostProcess, OpenFlags, SpawnOptions, StdioMode } from "./host.js";
export { nodeHost } from "./node-host.js";
export { memoryHost, type MemoryHost, type MemoryHostOptions, type MemoryProgram, type MemoryProgramContext } from "./memory-host.js";
export { faultHost, type FaultHost, type FaultPlan } from "./fault-host.js";
export { readText, writeFileAtomic, syncDir, mkdirp, pathExists, statIfExists, lstatIfExists, joinPath, dirname, basename } from "./util.js";
