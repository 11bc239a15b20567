/**
 * tsnix: Nix and NixOS-style system generations as an embeddable TypeScript library.
 *
 * @packageDocumentation
 */

/** The version of tsnix. @public */
export const version = "0.1.0";
