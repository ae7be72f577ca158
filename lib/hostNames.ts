// Names of everything a stack creates on a docker host, in one place so the components, the scripts'
// inputs and the runbook agree.
import * as path from "node:path";
import { Colour } from "./colour";

export function hostNames(stack: string, hostStateDir: string) {
    const prefix = `medusa-${stack}`;
    const edgeDir = path.posix.join(hostStateDir, "edge");
    return {
        network: prefix,
        postgres: `${prefix}-postgres`,
        postgresVolume: `${prefix}-postgres-data`,
        redis: `${prefix}-redis`,
        redisVolume: `${prefix}-redis-data`,
        registry: `${prefix}-registry`,
        registryVolume: `${prefix}-registry-data`,
        edge: `${prefix}-edge`,
        edgeDir,
        /** Paths as the edge container sees the mounted edgeDir. */
        edgeMountPoint: "/usr/local/etc/haproxy",
        server: (colour: Colour) => `${prefix}-${colour}-server`,
        worker: (colour: Colour) => `${prefix}-${colour}-worker`,
        migration: (colour: Colour) => `${prefix}-${colour}-migrate`,
        builder: `medusa-deploy-${stack}`,
    };
}

export type HostNames = ReturnType<typeof hostNames>;

/** Port the Medusa server listens on inside its container. */
export const MEDUSA_PORT = 9000;
/** Port the edge listens on inside its container (published on edgeAddress:edgePort). */
export const EDGE_CONTAINER_PORT = 8080;
