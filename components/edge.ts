// Edge: the HAProxy container that is the only thing published on the host. Its configuration names
// both colours and does not depend on which one is live, so a deploy never replaces or reloads it;
// traffic moves through its admin socket (TrafficSwitch). A changed edge setting installs a config
// that was validated first and reloads HAProxy gracefully.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { DeployConfig } from "../lib/deployConfig";
import { ADMIN_ASSETS, ASSETS_MAP_NAME, edgeControlFiles, EdgeControlFiles, MAINTENANCE_MAP_NAME, PREVIEW_MAP_NAME, sideFilesEnv } from "../lib/edgeControls";
import { EdgeClientLimits, renderHaproxyConfig } from "../lib/haproxyConfig";
import { EDGE_CONTAINER_PORT, HostNames, MEDUSA_PORT } from "../lib/hostNames";
import { DockerHost } from "./dockerHost";
import { contentHash } from "./hostScripts";

export interface EdgeArgs {
    edge: DeployConfig["edge"];
    names: HostNames;
    host: DockerHost;
    network: docker.Network;
    /**
     * The uid:gid the edge process runs as when host scripts run as root. When they do not (an ssh
     * host without sudo, a local host without root), the edge runs as the user they run as, so that
     * user can open the sockets HAProxy creates; install-edge-config.sh reports which it is.
     */
    edgeUser: string;
    dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * The maintenance and preview files of this stack's edge, at the path the edge container sees;
 * `maintenancePage` is the shop's own page (the setting maintenancePageFile), else the built-in one.
 */
export function stackEdgeControls(names: HostNames, maintenancePage?: string): EdgeControlFiles {
    return edgeControlFiles(names.edgeMountPoint, maintenancePage);
}

export function renderEdgeConfig(names: HostNames, clientLimits?: Partial<EdgeClientLimits>, maintenancePage?: string): string {
    return renderHaproxyConfig({
        bindAddress: "0.0.0.0",
        bindPort: EDGE_CONTAINER_PORT,
        servers: {
            blue: { address: `${names.server("blue")}:${MEDUSA_PORT}` },
            green: { address: `${names.server("green")}:${MEDUSA_PORT}` },
        },
        adminSocketPath: path.posix.join(names.edgeRunMountPoint, path.posix.basename(names.adminSocket)),
        operatorSocketPath: path.posix.join(names.edgeRunMountPoint, path.posix.basename(names.operatorSocket)),
        stateFilePath: path.posix.join(names.edgeMountPoint, "server-state"),
        // Docker's embedded DNS: a replaced colour container comes back with a new address.
        resolver: { nameserver: "127.0.0.11:53" },
        clientLimits,
        controls: stackEdgeControls(names, maintenancePage),
        assets: { paths: [ADMIN_ASSETS.urlPrefix], map: path.posix.join(names.edgeMountPoint, ASSETS_MAP_NAME) },
    });
}

/**
 * install-edge-config.sh's inputs for this stack: the folders, the image that validates the config,
 * the side files and maps the config reads. `edgeUser` only when host scripts run as root.
 */
export function edgeInstallEnv(names: HostNames, image: string, edgeUser?: string, maintenancePage?: string): Record<string, string> {
    return {
        EDGE_DIR: names.edgeDir,
        EDGE_CONTROL_DIR: names.edgeControlDir,
        EDGE_RUN_DIR: names.edgeRunDir,
        EDGE_IMAGE: image,
        EDGE_CONTAINER: names.edge,
        ...sideFilesEnv(stackEdgeControls(names, maintenancePage).sideFiles),
        EDGE_MAPS: `${MAINTENANCE_MAP_NAME} ${PREVIEW_MAP_NAME} ${ASSETS_MAP_NAME}`,
        ...(edgeUser !== undefined ? { EDGE_USER: edgeUser } : {}),
    };
}

/** The uid:gid install-edge-config.sh reports on its last line ("edge user: <uid>:<gid>"). */
export function parseEdgeUser(stdout: string): string {
    const user = /^edge user: ([0-9]+:[0-9]+)$/m.exec(stdout)?.[1];
    if (user === undefined) throw new Error(`install-edge-config did not report the edge user (output: ${JSON.stringify(stdout.trim().split("\n").pop() ?? "")})`);
    if (user.startsWith("0:")) throw new Error("install-edge-config reported uid 0 for the edge: the edge must not run as root");
    return user;
}

export class Edge extends pulumi.ComponentResource {
    readonly container: docker.Container;
    /** Host paths the traffic switch works with. */
    readonly adminSocket: string;
    readonly operatorSocket: string;
    readonly stateFile: string;
    readonly controlDir: string;
    /** The config folder (the map files) on the host, and as the edge container sees it. */
    readonly configDir: string;
    readonly configDirInEdge: string;
    /** URL on the host that reaches the edge, for verification. */
    readonly verifyUrl: string;

    constructor(name: string, args: EdgeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:Edge", name, {}, opts);
        const { names, host, edge } = args;
        const config = renderEdgeConfig(names, edge.clientLimits, edge.maintenancePage);
        this.adminSocket = names.adminSocket;
        this.operatorSocket = names.operatorSocket;
        this.stateFile = path.posix.join(names.edgeDir, "server-state");
        this.controlDir = names.edgeControlDir;
        this.configDir = names.edgeDir;
        this.configDirInEdge = names.edgeMountPoint;
        const reachableAddress = edge.address === "0.0.0.0" ? "127.0.0.1" : edge.address;
        this.verifyUrl = `http://${reachableAddress}:${edge.port}/health`;

        const image = new docker.RemoteImage("edge-image", { name: edge.image, keepLocally: true }, { parent: this, provider: host.provider, dependsOn: args.dependsOn });
        const installConfig = host.runScript(
            "edge-config",
            {
                script: "install-edge-config",
                env: edgeInstallEnv(names, edge.image, host.scriptsRunAsRoot ? args.edgeUser : undefined, edge.maintenancePage),
                stdin: config,
                triggers: [contentHash(config), host.scriptsRunAsRoot ? args.edgeUser : "script user"],
                privileged: true,
            },
            { parent: this, dependsOn: [image] },
        );

        this.container = new docker.Container(
            "edge",
            {
                name: names.edge,
                image: image.imageId,
                // Not root, and nothing it can write is a place where root-run host scripts act: the
                // config folder is read-only to it, the switch's lock and backups are not mounted.
                user: installConfig.stdout.apply(parseEdgeUser),
                restart: "unless-stopped",
                ports: [{ internal: EDGE_CONTAINER_PORT, external: edge.port, ip: edge.address }],
                // Folders, not single files: the switch replaces the state file by rename.
                volumes: [
                    { hostPath: names.edgeDir, containerPath: names.edgeMountPoint, readOnly: true },
                    { hostPath: names.edgeRunDir, containerPath: names.edgeRunMountPoint },
                ],
                readOnly: true,
                capabilities: { drops: ["ALL"] },
                securityOpts: ["no-new-privileges"],
                networksAdvanced: [{ name: args.network.name }],
                // At start HAProxy resolves every server name (init-addr libc), and the idle colour's
                // name does not exist yet. Docker's embedded DNS forwards an unknown name upstream; on
                // a host whose upstream DNS is slow or unreachable, glibc's default 5 s x 2 tries per
                // server kept the edge from opening its sockets for 40 s (measured in the rehearsal).
                // One 1-s try bounds that; container names are answered locally and at once.
                dnsOpts: ["timeout:1", "attempts:1"],
                destroyGraceSeconds: 30,
            },
            { parent: this, provider: host.provider, dependsOn: [installConfig] },
        );
        this.registerOutputs({});
    }
}
