// Names of everything a stack creates on a docker host, in one place so the components, the scripts'
// inputs and the runbook agree.
import * as path from "node:path";
import { Colour } from "./colour";

export function hostNames(stack: string, hostStateDir: string) {
    const prefix = `medusa-${stack}`;
    const edgeDir = path.posix.join(hostStateDir, "edge");
    const edgeRunDir = path.posix.join(hostStateDir, "edge-run");
    return {
        stack,
        network: prefix,
        postgres: `${prefix}-postgres`,
        postgresVolume: `${prefix}-postgres-data`,
        redis: `${prefix}-redis`,
        redisVolume: `${prefix}-redis-data`,
        registry: `${prefix}-registry`,
        registryVolume: `${prefix}-registry-data`,
        edge: `${prefix}-edge`,
        dailyBackup: `${prefix}-daily-backup`,
        /** haproxy.cfg and the server-state file: written by host scripts, read-only to the edge. */
        edgeDir,
        /** The edge lock, the switch's backups and temporary files: the edge container never sees it. */
        edgeControlDir: path.posix.join(hostStateDir, "edge-control"),
        /** The edge's admin and operator sockets: the only folder the edge can write. */
        edgeRunDir,
        adminSocket: path.posix.join(edgeRunDir, "admin.sock"),
        operatorSocket: path.posix.join(edgeRunDir, "operator.sock"),
        /** Where the edge container sees edgeDir (read-only) and edgeRunDir. */
        edgeMountPoint: "/usr/local/etc/haproxy",
        edgeRunMountPoint: "/run/medusa-edge",
        server: (colour: Colour) => `${prefix}-${colour}-server`,
        worker: (colour: Colour) => `${prefix}-${colour}-worker`,
        migration: (colour: Colour) => `${prefix}-${colour}-migrate`,
        /** A one-off command's container (npm run exec), named by its start time: "20261203T101500Z". */
        oneoff: (colour: Colour, stamp: string) => `${prefix}-${colour}-oneoff-${stamp}`,
        builder: `medusa-deploy-${stack}`,
    };
}

export type HostNames = ReturnType<typeof hostNames>;

/** Port the Medusa server listens on inside its container. */
export const MEDUSA_PORT = 9000;
/** Port the edge listens on inside its container (published on edgeAddress:edgePort). */
export const EDGE_CONTAINER_PORT = 8080;
