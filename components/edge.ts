// Edge: the HAProxy container that is the only thing published on the host. Its configuration names
// both colours and does not depend on which one is live, so a deploy never replaces or reloads it;
// traffic moves through its admin socket (TrafficSwitch). A changed edge setting installs a config
// that was validated first and reloads HAProxy gracefully.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { DeployConfig } from "../lib/deployConfig";
import { renderHaproxyConfig } from "../lib/haproxyConfig";
import { EDGE_CONTAINER_PORT, HostNames, MEDUSA_PORT } from "../lib/hostNames";
import { DockerHost } from "./dockerHost";
import { contentHash } from "./hostScripts";

export interface EdgeArgs {
    edge: DeployConfig["edge"];
    names: HostNames;
    host: DockerHost;
    network: docker.Network;
    /**
     * Owner of the admin socket when host scripts do not run as root: a known uid/gid (a local
     * host), or `installer`, the user install-edge-config.sh runs as (an ssh host without sudo,
     * whose uid only the host knows).
     */
    adminSocketOwner?: { uid: number; gid: number } | "installer";
    dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export function renderEdgeConfig(names: HostNames, adminSocketOwner?: { uid: number; gid: number }): string {
    return renderHaproxyConfig({
        bindAddress: "0.0.0.0",
        bindPort: EDGE_CONTAINER_PORT,
        servers: {
            blue: { address: `${names.server("blue")}:${MEDUSA_PORT}` },
            green: { address: `${names.server("green")}:${MEDUSA_PORT}` },
        },
        adminSocketPath: path.posix.join(names.edgeMountPoint, "admin.sock"),
        stateFilePath: path.posix.join(names.edgeMountPoint, "server-state"),
        // Docker's embedded DNS: a replaced colour container comes back with a new address.
        resolver: { nameserver: "127.0.0.11:53" },
        adminSocketOwner,
    });
}

export class Edge extends pulumi.ComponentResource {
    readonly container: docker.Container;
    /** Host paths the traffic switch works with. */
    readonly adminSocket: string;
    readonly stateFile: string;
    readonly lockFile: string;
    /** URL on the host that reaches the edge, for verification. */
    readonly verifyUrl: string;

    constructor(name: string, args: EdgeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:Edge", name, {}, opts);
        const { names, host, edge } = args;
        const owner = args.adminSocketOwner;
        const config = renderEdgeConfig(names, owner === "installer" ? undefined : owner);
        this.adminSocket = path.posix.join(names.edgeDir, "admin.sock");
        this.stateFile = path.posix.join(names.edgeDir, "server-state");
        this.lockFile = path.posix.join(names.edgeDir, "haproxy.cfg.lock");
        const reachableAddress = edge.address === "0.0.0.0" ? "127.0.0.1" : edge.address;
        this.verifyUrl = `http://${reachableAddress}:${edge.port}/health`;

        const image = new docker.RemoteImage("edge-image", { name: edge.image, keepLocally: true }, { parent: this, provider: host.provider, dependsOn: args.dependsOn });
        const installConfig = host.runScript(
            "edge-config",
            {
                script: "install-edge-config",
                env: { EDGE_DIR: names.edgeDir, EDGE_IMAGE: edge.image, EDGE_CONTAINER: names.edge, ...(owner === "installer" ? { EDGE_ADMIN_SOCKET_OWNER: "installer" } : {}) },
                stdin: config,
                triggers: [contentHash(config)],
                privileged: true,
            },
            { parent: this, dependsOn: [image] },
        );

        this.container = new docker.Container(
            "edge",
            {
                name: names.edge,
                image: image.imageId,
                // The admin socket and state file live in a root-owned host folder (0750).
                user: "root",
                restart: "unless-stopped",
                ports: [{ internal: EDGE_CONTAINER_PORT, external: edge.port, ip: edge.address }],
                // The folder, not single files: the switch replaces the state file by rename.
                volumes: [{ hostPath: names.edgeDir, containerPath: names.edgeMountPoint }],
                networksAdvanced: [{ name: args.network.name }],
                destroyGraceSeconds: 30,
            },
            { parent: this, provider: host.provider, dependsOn: [installConfig] },
        );
        this.registerOutputs({});
    }
}
