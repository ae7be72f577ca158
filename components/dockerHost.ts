// DockerHost: the one place that knows how to reach a docker host. Every other component gets its
// docker provider and runs host scripts through it, so local and ssh hosts differ only here. It also
// applies the daemon.json settings (BuildKit, GC, live-restore, log rotation) and makes sure the
// named BuildKit builder the image build uses exists.
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as dockerBuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { renderBuildkitdToml } from "../lib/buildkitdToml";
import { applyDaemonJsonEnv, desiredDaemonSettings } from "../lib/daemonJson";
import { parseScriptUser } from "../lib/databaseBackup";
import { DeployConfig, HostTarget } from "../lib/deployConfig";
import { renderHostInvocation, renderStdinHostInvocation } from "../lib/hostInvocation";
import { hostNames } from "../lib/hostNames";
import { dockerSshOptions, knownHostsLine, sshFiles } from "../lib/sshTransport";
import { writeSshIdentity } from "./sshIdentity";
import { contentHash, hostScript, HostScriptName } from "./hostScripts";

export interface DockerHostArgs {
    /** The validated stack configuration. */
    config: DeployConfig;
    /**
     * Registry the host pulls release images from, for the configured credentials.
     * @example "registry.example.com"
     */
    registryAddress?: string;
    /** Home folder of the user running pulumi: Docker's ssh transport reads the stack's key and host key from files there. */
    homeDir: string;
    /** uid of the user running pulumi (whom local host scripts run as without sudo). */
    localUid: number;
}

export interface HostScriptRun {
    script: HostScriptName;
    /** Plain inputs of the script (never secrets). */
    env: Record<string, pulumi.Input<string>>;
    /** Data on the script's stdin; may be a secret (e.g. env lines with DATABASE_URL). */
    stdin?: pulumi.Input<string>;
    /** Values whose change re-runs the script (the script's own text is always included). */
    triggers?: pulumi.Input<string>[];
    /** Mark stdout/stderr secret and keep them out of the logs. */
    secretOutput?: boolean;
    /** Run with sudo when the stack says so (daemon.json, edge files). */
    privileged?: boolean;
}

/**
 * The `<setting>=<uid>:<gid>` words preflight.sh checks: the app's ids on a building stack (a
 * promoting one runs the image as it was built), the edge's when host scripts run as root (else
 * the edge runs as the deploy user, an account by definition).
 */
export function containerUsersToCheck(config: DeployConfig, scriptsRunAsRoot: boolean): string | undefined {
    const words: string[] = [];
    if (config.image.kind === "build") words.push(`appUser=${config.image.appUser.uid}:${config.image.appUser.gid}`);
    if (scriptsRunAsRoot) words.push(`edgeUser=${config.edgeUser}`);
    return words.length > 0 ? words.join(" ") : undefined;
}

/** `ssh://user@host:port` as Docker's ssh transport expects it. */
export function dockerHostUrl(host: HostTarget): string | undefined {
    return host.kind === "ssh" ? `ssh://${host.user}@${host.hostname}:${host.port}` : undefined;
}

export class DockerHost extends pulumi.ComponentResource {
    /** Docker provider for containers, networks, volumes and pulls on this host. */
    readonly provider: docker.Provider;
    private builds?: dockerBuild.Provider;
    /** Resources the rest of the deploy waits for (daemon.json applied). */
    readonly ready: pulumi.Resource[] = [];
    /** Privileged host scripts run as root: through sudo, as the ssh user root, or a local root. */
    readonly scriptsRunAsRoot: boolean;
    /** `<uid>:<gid>` the privileged host scripts run as on the host: the backup folder's owner. */
    readonly scriptUser: pulumi.Output<string>;
    private readonly config: DeployConfig;

    constructor(name: string, args: DockerHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:DockerHost", name, {}, opts);
        this.config = args.config;
        const target = args.config.host;
        this.scriptsRunAsRoot = args.config.sudo || (target.kind === "ssh" ? target.user === "root" : args.localUid === 0);
        const url = dockerHostUrl(args.config.host);

        // Docker's ssh transport runs the local ssh client, which reads keys and known hosts from
        // files only: the stack's own, written here, and nothing else (no agent, no ~/.ssh, no prompt).
        const host = args.config.host;
        let sshOpts: string[] | undefined;
        if (host.kind === "ssh") {
            const files = sshFiles(args.homeDir, args.config.stack);
            writeSshIdentity(files, host.privateKey, knownHostsLine(host));
            sshOpts = dockerSshOptions(files);
        }
        const auth = args.config.registryAuth;
        const registryAuth =
            auth && args.registryAddress ? [{ address: args.registryAddress, username: auth.username, password: pulumi.secret(auth.password.reveal()) }] : undefined;
        this.provider = new docker.Provider(
            `${name}-docker`,
            { ...(url ? { host: url, sshOpts } : {}), registryAuth },
            { parent: this },
        );

        // First on the host, before daemon.json or any container: checks only the host can answer.
        const preflight = this.runPreflight();
        this.scriptUser = preflight.stdout.apply(parseScriptUser);
        this.ready.push(preflight);
        if (args.config.daemon.manage) this.ready.push(this.applyDaemonSettings(preflight));
        this.registerOutputs({});
    }

    /** docker-build provider that builds on this host's daemon; only a building stack asks for it. */
    buildProvider(): dockerBuild.Provider {
        const url = dockerHostUrl(this.config.host);
        this.builds ??= new dockerBuild.Provider("host-docker-build", url ? { host: url } : {}, { parent: this });
        return this.builds;
    }

    /** Runs a script under host/ on this host, through ssh for remote hosts. */
    runScript(name: string, run: HostScriptRun, opts: pulumi.CustomResourceOptions): command.local.Command | command.remote.Command {
        const script = hostScript(run.script);
        const sudo = Boolean(run.privileged) && this.config.sudo;
        // The script goes on stdin ahead of its data: a failed command's error quotes the command line,
        // which then stays short enough for the script's own reason to show after it.
        const invocation = pulumi.all(run.env).apply((env) => renderStdinHostInvocation({ script, name: run.script, env, sudo }));
        const create = invocation.apply((i) => i.command);
        const stdin = run.stdin === undefined ? invocation.apply((i) => i.stdinPrefix) : pulumi.all([invocation, run.stdin]).apply(([i, data]) => i.stdinPrefix + data);
        const triggers = [contentHash(script), ...(run.triggers ?? [])];
        const secretOpts: pulumi.CustomResourceOptions = run.secretOutput ? { additionalSecretOutputs: ["stdout", "stderr"] } : {};
        const logging = run.secretOutput ? "none" : "stdoutAndStderr";
        // The provider otherwise hands a re-run its previous stdout/stderr as PULUMI_COMMAND_STDOUT/
        // _STDERR in the process environment; the scripts never need it, and it can hold output of
        // a secret step.
        const addPreviousOutputInEnv = false;
        const host = this.config.host;
        if (host.kind === "local") {
            return new command.local.Command(name, { create, stdin, triggers, logging, addPreviousOutputInEnv }, { ...opts, ...secretOpts });
        }
        return new command.remote.Command(
            name,
            {
                connection: { host: host.hostname, port: host.port, user: host.user, privateKey: pulumi.secret(host.privateKey.reveal()), hostKey: host.hostKey },
                create,
                stdin,
                triggers,
                logging,
                addPreviousOutputInEnv,
            },
            { ...opts, ...secretOpts },
        );
    }

    /**
     * Makes sure the named docker-container builder that docker-build uses exists, with a GC-bounded
     * buildkitd.toml. buildx keeps builder metadata on the machine running pulumi, so this runs
     * locally, pointed at the host, and it runs for every build: its triggers hold the release being
     * built and the deploying machine, so a deploy from another machine (a CI runner, a colleague's
     * laptop) or of a new release runs the script again (it leaves an existing builder alone).
     */
    ensureBuilder(build: { release: string; machine: string; kept?: boolean }): { name: string; resource: command.local.Command } {
        const image = this.config.image;
        const network = image.kind === "build" ? image.buildNetwork : "bridge";
        // ensure-buildkit-builder.sh recreates the builder (keeping its cache) when its options change.
        const builderName = hostNames(this.config.stack, this.config.hostStateDir).builder;
        const toml = renderBuildkitdToml({ keepStorage: this.config.daemon.buildkitKeepStorage });
        const script = hostScript("ensure-buildkit-builder");
        const url = dockerHostUrl(this.config.host);
        // Host networking lets the builder push to a registry on the host's loopback (dev's registry);
        // otherwise the builder and the build's RUN steps have a network namespace of their own.
        const buildkitImage = this.config.daemon.buildkitImage;
        const env: Record<string, string> = {
            BUILDER_NAME: builderName,
            BUILDKITD_TOML: toml,
            ...(network === "host" ? { BUILDER_DRIVER_OPTS: "network=host" } : {}),
            ...(buildkitImage ? { BUILDKIT_IMAGE: buildkitImage } : {}),
            ...(url ? { DOCKER_HOST: url } : {}),
        };
        const resource = new command.local.Command(
            "buildkit-builder",
            {
                create: renderHostInvocation({ script, name: "ensure-buildkit-builder", env, sudo: false }),
                triggers: [contentHash(script, JSON.stringify(env)), build.release, build.machine],
                addPreviousOutputInEnv: false,
            },
            // A kept build (nothing is built) keeps the command as the state holds it: it never runs.
            { parent: this, dependsOn: this.ready, ...(build.kept ? { ignoreChanges: ["*"] } : {}) },
        );
        return { name: builderName, resource };
    }

    /**
     * host/preflight.sh: hostStateDir's folders, the container ids against the host's accounts, and
     * the backup folder (made when absent, so the daily backup container can mount it).
     */
    private runPreflight(): command.local.Command | command.remote.Command {
        const users = containerUsersToCheck(this.config, this.scriptsRunAsRoot);
        const backup = this.config.backup;
        const env = {
            HOST_STATE_DIR: this.config.hostStateDir,
            ...(users ? { CONTAINER_USERS: users } : {}),
            ...(backup.enabled || backup.daily ? { BACKUP_DIR: backup.dir } : {}),
        };
        return this.runScript("preflight", { script: "preflight", env, triggers: [contentHash(JSON.stringify(env))], privileged: true }, { parent: this });
    }

    private applyDaemonSettings(after: pulumi.Resource): pulumi.Resource {
        const daemon = this.config.daemon;
        const desired = desiredDaemonSettings({
            buildkitKeepStorage: daemon.buildkitKeepStorage,
            logMaxSize: daemon.logMaxSize,
            logMaxFile: daemon.logMaxFile,
            extra: daemon.extra,
        });
        const env = applyDaemonJsonEnv(desired);
        return this.runScript("daemon-json", { script: "apply-daemon-json", env, triggers: [contentHash(JSON.stringify(env))], privileged: true }, { parent: this, dependsOn: [after] });
    }
}
