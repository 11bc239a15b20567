// Declarations: TypeScript 7 (native) emits them, api-extractor rolls them up
// into dist/index.d.ts and checks the API report. Outside CI a changed API
// updates etc/tsnix.api.md (review it in the diff); in CI (CI=true) a changed
// API fails the build until the report is committed.
import { execFileSync } from "node:child_process";
import { copyFileSync } from "node:fs";
import { Extractor, ExtractorConfig } from "@microsoft/api-extractor";

execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
const local = process.env.CI !== "true" && process.env.CI !== "1";
const config = ExtractorConfig.loadFileAndPrepare("api-extractor.json");
const result = Extractor.invoke(config, { localBuild: local, showVerboseMessages: false });
if (!result.succeeded) {
  console.error(
    result.apiReportChanged
      ? "error: the public API changed; run `npm run build` locally and commit etc/tsnix.api.md"
      : `error: api-extractor failed with ${result.errorCount} errors and ${result.warningCount} warnings`,
  );
  process.exit(1);
}
copyFileSync("dist/index.d.ts", "dist/index.d.cts");
