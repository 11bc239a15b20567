/**
 * The description of a system generation the modules put in its top level
 * (`tsnix-system.json`), which activation, the service plan and the boot
 * loaders read. Decoded with io-ts when read back from a generation.
 */
import * as t from "io-ts";
import { isLeft } from "fp-ts/lib/Either.js";
import { OsError } from "./errors.js";

const nullable = <T extends t.Mixed>(c: T) => t.union([c, t.null]);

const UserSpec = t.type({
  name: t.string,
  uid: nullable(t.number),
  description: t.string,
  isSystemUser: t.boolean,
  isNormalUser: t.boolean,
  group: t.string,
  extraGroups: t.array(t.string),
  home: t.string,
  homeMode: t.string,
  createHome: t.boolean,
  hashedPassword: nullable(t.string),
  initialHashedPassword: nullable(t.string),
  shell: t.string,
});
const GroupSpec = t.type({ name: t.string, gid: nullable(t.number), members: t.array(t.string) });
const UnitSpec = t.type({ wantedBy: t.array(t.string), restartIfChanged: t.boolean, reloadIfChanged: t.boolean, stopIfChanged: t.boolean });
const LoaderSpec = t.union([
  t.type({ type: t.literal("grub"), configurationLimit: t.number, devices: t.array(t.string), extraEntries: t.string, timeout: nullable(t.number) }),
  t.type({ type: t.literal("systemd-boot"), configurationLimit: nullable(t.number), timeout: nullable(t.number), efiSysMountPoint: t.string }),
  t.type({ type: t.literal("none") }),
]);

/** io-ts codec of {@link SystemSpec}. @public */
export const SystemSpecCodec = t.intersection([
  t.type({
  version: t.literal(1),
  label: t.string,
  release: t.string,
  nixosVersion: t.string,
  configurationName: t.string,
  hostName: t.string,
  stateVersion: t.string,
  system: t.string,
  etc: t.string,
  sw: t.string,
  boot: t.type({ kernel: nullable(t.string), kernelVersion: nullable(t.string), initrd: nullable(t.string), kernelParams: t.array(t.string), loader: LoaderSpec }),
  users: t.type({ users: t.record(t.string, UserSpec), groups: t.record(t.string, GroupSpec), mutableUsers: t.boolean }),
  units: t.record(t.string, UnitSpec),
  activationScripts: t.record(t.string, t.type({ deps: t.array(t.string), text: t.string, supportsDryActivation: t.boolean })),
  }),
  // Optional: generations built before specialisations were supported lack it.
  t.partial({ specialisations: t.record(t.string, t.string) }),
]);

/** What a system generation declares (users, units, boot, /etc, …). @public */
export type SystemSpec = t.TypeOf<typeof SystemSpecCodec>;
/** One declared user. @public */
export type UserSpec = t.TypeOf<typeof UserSpec>;
/** One declared group. @public */
export type GroupSpec = t.TypeOf<typeof GroupSpec>;
/** How switching treats one unit. @public */
export type UnitSpec = t.TypeOf<typeof UnitSpec>;

/** Decode a generation's tsnix-system.json. @public */
export function parseSystemSpec(text: string, where: string): SystemSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new OsError("bad-spec", `'${where}' is not valid JSON: ${(e as Error).message}`, { where });
  }
  const r = SystemSpecCodec.decode(raw);
  if (isLeft(r)) throw new OsError("bad-spec", `'${where}' is not a tsnix system description`, { where });
  return r.right;
}
