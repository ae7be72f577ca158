// Operator mistakes, one per case, each applied to a real stack file (Pulumi.<stack>.yaml with its
// secrets set). Every case must be refused by the settings check with a message that names the
// setting and says what would be valid, and the program run under Pulumi mocks must stop before it
// declares a single resource. The classes: weak secrets outside a dev sandbox, devDefaults beyond
// one, malformed keys, self-promotion, a missing or wrong app folder (pinned release or not), port
// collisions, daemon.json overrides, unsafe state folders, URLs and CORS, env names, images,
// platforms, registries, release names, the switch watch, and settings that would have no effect.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { PROJECT_NAME } from "../../lib/configSchema";
import { ConfigError, DEV_ONLY_SECRETS, parseDeployConfig, RawConfig } from "../../lib/deployConfig";
import { loadStackConfig, namespaced, repoRoot, requiredSecretsOf, requiredSettingsOf } from "../support/stackFiles";
import { thrownBy } from "../support/thrown";
import { fakeOpenSshPrivateKey, strongSecret, requiredSettingValue } from "./fixtureSecrets";

const plain = (value: string) => ({ value, secret: false });
const secret = (value: string) => ({ value, secret: true });

/** The stack file with its listed secrets set to good values: valid as it is. */
function stackFile(stack: string): RawConfig {
    const raw = loadStackConfig(stack);
    for (const key of requiredSecretsOf(stack)) raw[key] = secret(strongSecret(key));
    for (const key of requiredSettingsOf(stack)) raw[key] = { value: requiredSettingValue(key), secret: false };
    return raw;
}

/** An OpenSSH key whose private part is encrypted (cipher aes256-ctr), as `ssh-keygen -N <passphrase>` writes it. */
function encryptedOpenSshKey(): string {
    const unencrypted = fakeOpenSshPrivateKey();
    const body = Buffer.from(unencrypted.split("\n").slice(1, -2).join(""), "base64");
    const magic = Buffer.from("openssh-key-v1\0");
    const cipher = Buffer.from("aes256-ctr");
    const length = Buffer.alloc(4);
    length.writeUInt32BE(cipher.length);
    const rest = body.subarray(magic.length + 4 + 4); // past "none"
    const blob = Buffer.concat([magic, length, cipher, rest]);
    return ["-----BEGIN OPENSSH PRIVATE KEY-----", ...(blob.toString("base64").match(/.{1,70}/g) ?? []), "-----END OPENSSH PRIVATE KEY-----", ""].join("\n");
}

/** Runs index.ts under mocks like tests/support/pulumiProgram.ts, recording every resource registered. */
async function runUnderMocks(stack: string, raw: RawConfig, homeDir: string): Promise<{ error: unknown; declared: string[] }> {
    const declared: string[] = [];
    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                declared.push(`${args.type} ${args.name}`);
                if (args.type === "pulumi:pulumi:StackReference") return { id: args.inputs.name, state: { name: args.inputs.name, outputs: {}, secretOutputNames: [] } };
                return { id: `${args.name}-id`, state: args.inputs };
            },
            call: () => ({}),
        },
        PROJECT_NAME,
        stack,
        false,
        "organization",
    );
    const { config, secretKeys } = namespaced(raw);
    pulumi.runtime.setAllConfig(config, secretKeys);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const main = require("../../index") as (env: unknown) => Promise<unknown>;
    let error: unknown;
    await pulumi.runtime.runInPulumiStack(async () => {
        try {
            await main({ homeDir, user: { uid: 1000, gid: 1000 }, projectDir: repoRoot, appRelease: () => "A" });
        } catch (e) {
            error = e;
        }
        return {};
    });
    // Registrations reach the mock monitor asynchronously (as in tests/support/pulumiProgram.ts).
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    return { error, declared: declared.filter((d) => !d.startsWith("pulumi:pulumi:Stack ")) };
}

interface Case {
    name: string;
    stack: "dev" | "staging" | "prod";
    change: (raw: RawConfig) => void;
    /** The setting the message must name. */
    key: string;
    /** What the message must say: the problem and what would be valid. */
    says: RegExp;
    /** Home folder of the user running pulumi. @default "/home/shop" */
    homeDir?: string;
}

// Folders for the appPath and hostStateDir cases, made in before().
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "medusa-deploy-config-"));
const noLockApp = path.join(scratch, "no-lock");
const noBuildApp = path.join(scratch, "no-build");
const appOutsideGit = path.join(scratch, "outside-git");
const worldWritable = path.join(repoRoot, ".test-work", `config-world-writable-${process.pid}`);

const cases: Case[] = [
    // Weak secrets outside a dev sandbox.
    { name: "jwtSecret is Medusa's documented default", stack: "staging", key: "jwtSecret", change: (r) => (r.jwtSecret = secret("supersecret")), says: /is too weak for stack "staging" \(value not shown.*well-known placeholder.*at least 32 random characters.*openssl rand -hex 32/ },
    { name: "cookieSecret is changeme", stack: "prod", key: "cookieSecret", change: (r) => (r.cookieSecret = secret("changeme")), says: /is too weak for stack "prod".*placeholder.*at least 32 random characters/ },
    { name: "postgresPassword is postgres", stack: "staging", key: "postgresPassword", change: (r) => (r.postgresPassword = secret("postgres")), says: /is too weak.*placeholder.*at least 16 random characters.*openssl rand -hex 24/ },
    { name: "jwtSecret copied from the published dev default", stack: "prod", key: "jwtSecret", change: (r) => (r.jwtSecret = secret(DEV_ONLY_SECRETS.jwtSecret)), says: /is too weak.*published dev-only default.*at least 32 random characters/ },
    { name: "jwtSecret is the <value> of a docs command line", stack: "staging", key: "jwtSecret", change: (r) => (r.jwtSecret = secret("<value>")), says: /is too weak.*placeholder.*at least 32/ },
    { name: "jwtSecret is the unexpanded command", stack: "staging", key: "jwtSecret", change: (r) => (r.jwtSecret = secret("$(openssl rand -hex 32)")), says: /is too weak.*placeholder.*at least 32/ },
    { name: "jwtSecret is short", stack: "prod", key: "jwtSecret", change: (r) => (r.jwtSecret = secret("9f3b1c7d2e8a4f60b5c1")), says: /has 20 characters, fewer than the 32 required/ },
    { name: "jwtSecret is one character repeated", stack: "prod", key: "jwtSecret", change: (r) => (r.jwtSecret = secret("x".repeat(40))), says: /is too weak.*(run of neighbouring characters|repeated).*at least 32/ },
    { name: "cookieSecret is a short piece repeated", stack: "staging", key: "cookieSecret", change: (r) => (r.cookieSecret = secret("abc123".repeat(7))), says: /one short piece repeated.*at least 32 random characters/ },
    { name: "cookieSecret is a run of characters", stack: "staging", key: "cookieSecret", change: (r) => (r.cookieSecret = secret("0123456789abcdefghijklmnopqrstuvwxyz")), says: /run of neighbouring characters.*at least 32/ },
    { name: "cookieSecret is the jwtSecret again", stack: "prod", key: "cookieSecret", change: (r) => (r.cookieSecret = r.jwtSecret), says: /must differ from medusa-deploy:jwtSecret.*Generate each on its own/ },
    { name: "postgresPassword piped with a line break", stack: "staging", key: "postgresPassword", change: (r) => (r.postgresPassword = secret(`${strongSecret("postgresPassword")}\n`)), says: /contains a line break.*set it with the value as an argument/ },
    { name: "databaseUrl with a weak password", stack: "prod", key: "databaseUrl", change: (r) => { delete r.postgresPassword; r.databaseUrl = secret("postgres://medusa:medusa@db.internal:5432/medusa"); }, says: /has a password that is too weak.*at least 16 random characters/ },
    { name: "registryPassword is a placeholder", stack: "staging", key: "registryPassword", change: (r) => (r.registryPassword = secret("changeme")), says: /well-known placeholder.*set the token your registry issued/ },
    { name: "appSecretEnv value is a placeholder", stack: "prod", key: "appSecretEnv", change: (r) => (r.appSecretEnv = secret('{"STRIPE_API_KEY":"changeme"}')), says: /value of STRIPE_API_KEY is a well-known placeholder.*set the real value/ },
    { name: "a dev stack serving the network with a weak secret", stack: "dev", key: "jwtSecret", change: (r) => { r.devDefaults = plain("false"); r.edgeAddress = plain("0.0.0.0"); r.jwtSecret = secret("supersecret"); r.cookieSecret = secret(strongSecret("cookieSecret")); r.postgresPassword = secret(strongSecret("postgresPassword")); }, says: /is too weak for stack "dev".*accepted only on a local dev sandbox/ },

    // devDefaults beyond a local dev sandbox.
    { name: "devDefaults on a local stack named prod on 0.0.0.0:80", stack: "prod", key: "devDefaults", change: (r) => { for (const k of ["host", "sshPrivateKey", "promoteFrom", "registryUsername", "registryPassword", "jwtSecret", "cookieSecret", "postgresPassword", "publicUrl"]) delete r[k]; Object.assign(r, { host: plain("local"), devDefaults: plain("true"), edgeAddress: plain("0.0.0.0"), edgePort: plain("80"), publicUrl: plain("https://shop.example.com"), registry: plain("localhost:5000/medusa-store"), localRegistryPort: plain("5000") }); }, says: /must be false on stack "prod": its dev-only secrets are published.*allowed only on a local dev sandbox: a stack named dev, dev-<name> or local, with host `local`, edgeAddress on loopback.*Here "prod" is not a dev stack name, edgeAddress 0.0.0.0 is not a loopback address/ },
    { name: "devDefaults on the dev stack listening on 0.0.0.0", stack: "dev", key: "devDefaults", change: (r) => (r.edgeAddress = plain("0.0.0.0")), says: /must be false on stack "dev".*Here edgeAddress 0.0.0.0 is not a loopback address.*set real secrets/ },
    { name: "devDefaults on the dev stack behind a public URL", stack: "dev", key: "devDefaults", change: (r) => (r.publicUrl = plain("https://dev.shop.example.com")), says: /Here publicUrl's host dev.shop.example.com is not this machine/ },
    { name: "devDefaults on staging over ssh", stack: "staging", key: "devDefaults", change: (r) => (r.devDefaults = plain("true")), says: /Here "staging" is not a dev stack name, host is not `local`/ },

    // sshPrivateKey that is not a usable private key.
    { name: "sshPrivateKey is the key's path", stack: "staging", key: "sshPrivateKey", change: (r) => (r.sshPrivateKey = secret("~/.ssh/id_ed25519")), says: /looks like a file path.*pulumi config set --secret medusa-deploy:sshPrivateKey < ~\/.ssh\/id_ed25519/ },
    { name: "sshPrivateKey is the public key", stack: "prod", key: "sshPrivateKey", change: (r) => (r.sshPrivateKey = secret("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeploy deploy@ci")), says: /is a public key.*set the private key/ },
    { name: "sshPrivateKey has a passphrase", stack: "staging", key: "sshPrivateKey", change: (r) => (r.sshPrivateKey = secret(encryptedOpenSshKey())), says: /protected by a passphrase.*without one/ },
    { name: "sshPrivateKey is not a key at all", stack: "staging", key: "sshPrivateKey", change: (r) => (r.sshPrivateKey = secret("my deploy key")), says: /must be the text of a private key, from -----BEGIN/ },

    // A stack promoting from itself, in any spelling, or from a dev stack.
    { name: "prod promotes from prod", stack: "prod", key: "promoteFrom", change: (r) => (r.promoteFrom = plain("prod")), says: /names this same stack.*cannot promote its own image.*e.g. organization\/medusa-deploy\/staging/ },
    { name: "prod promotes from medusa-deploy/prod", stack: "prod", key: "promoteFrom", change: (r) => (r.promoteFrom = plain("medusa-deploy/prod")), says: /names this same stack.*organization\/medusa-deploy\/staging/ },
    { name: "prod promotes from organization/medusa-deploy/prod", stack: "prod", key: "promoteFrom", change: (r) => (r.promoteFrom = plain("organization/medusa-deploy/prod")), says: /names this same stack.*organization\/medusa-deploy\/staging/ },
    { name: "prod promotes from itself in other capitals", stack: "prod", key: "promoteFrom", change: (r) => (r.promoteFrom = plain("acme/Medusa-Deploy/PROD")), says: /names this same stack.*Name the stack that builds and verifies/ },
    { name: "prod promotes from the dev stack", stack: "prod", key: "promoteFrom", change: (r) => (r.promoteFrom = plain("organization/medusa-deploy/dev")), says: /names the dev stack.*loopback registry.*e.g. organization\/medusa-deploy\/staging/ },
    { name: "prod promotes from a name with spaces", stack: "prod", key: "promoteFrom", change: (r) => (r.promoteFrom = plain("my staging")), says: /must name a stack as `stack`, `project\/stack` or `org\/project\/stack`.*e\.g\. staging, got "my staging"/ },

    // The app folder, whether the release is pinned or not.
    { name: "appPath does not exist (release auto)", stack: "staging", key: "appPath", change: (r) => (r.appPath = plain("examples/medusa-shop")), says: /"examples\/medusa-shop" \(.*\) does not exist: set it to the folder of the Medusa app/ },
    { name: "appPath does not exist (release pinned)", stack: "staging", key: "appPath", change: (r) => { r.appPath = plain("examples/medusa-shop"); r.release = plain("v1.2.0"); }, says: /does not exist: set it to the folder of the Medusa app, holding its package.json and package-lock.json/ },
    { name: "appPath is a file", stack: "dev", key: "appPath", change: (r) => (r.appPath = plain("README.md")), says: /is a file, not a folder: set it to the folder of the Medusa app/ },
    { name: "appPath has no package.json", stack: "staging", key: "appPath", change: (r) => (r.appPath = plain("docker")), says: /has no package.json.*set it to the folder of the Medusa app/ },
    { name: "appPath has no package-lock.json", stack: "staging", key: "appPath", change: (r) => { r.appPath = plain(noLockApp); r.release = plain("v1"); }, says: /has no package-lock.json.*run `npm install` there and commit package-lock.json/ },
    { name: "appPath's package.json has no build script", stack: "dev", key: "appPath", change: (r) => (r.appPath = plain(noBuildApp)), says: /without a "build" script.*"build": "medusa build"/ },

    // Ports: collisions with each other and with host services, and the range.
    { name: "edgePort is sshd's port", stack: "staging", key: "edgePort", change: (r) => { r.host = plain("ssh://deploy@staging.shop.example.com:2222"); r.edgePort = plain("22"); }, says: /is 22, the port of ssh on a docker host.*Choose a free port, e.g. 8080/ },
    { name: "edgePort is the host URL's ssh port", stack: "staging", key: "edgePort", change: (r) => { r.host = plain("ssh://deploy@staging.shop.example.com:2222"); r.edgePort = plain("2222"); }, says: /is 2222, the same port as the host's ssh port \(medusa-deploy:host\).*Choose a different port/ },
    { name: "edgePort is the default ssh port of the host", stack: "prod", key: "edgePort", change: (r) => (r.edgePort = plain("22")), says: /is 22, the same port as the host's ssh port/ },
    { name: "edgePort is Postgres's port", stack: "prod", key: "edgePort", change: (r) => (r.edgePort = plain("5432")), says: /is 5432, the port of PostgreSQL.*Choose a free port/ },
    { name: "edgePort is Redis's port", stack: "staging", key: "edgePort", change: (r) => (r.edgePort = plain("6379")), says: /is 6379, the port of Redis/ },
    { name: "edgePort is the Docker API's port", stack: "staging", key: "edgePort", change: (r) => (r.edgePort = plain("2375")), says: /is 2375, the port of the Docker API/ },
    { name: "edgePort is DNS's port", stack: "dev", key: "edgePort", change: (r) => (r.edgePort = plain("53")), says: /is 53, the port of DNS/ },
    { name: "edgePort is the local registry's port", stack: "dev", key: "edgePort", change: (r) => (r.edgePort = plain("5000")), says: /is 5000, the same port as the local registry \(medusa-deploy:localRegistryPort\)/ },
    { name: "localRegistryPort is SMTP's port", stack: "dev", key: "localRegistryPort", change: (r) => { r.localRegistryPort = plain("25"); r.registry = plain("localhost:25/medusa-store"); }, says: /is 25, the port of SMTP mail.*e.g. 5000/ },
    { name: "edgePort 0", stack: "prod", key: "edgePort", change: (r) => (r.edgePort = plain("0")), says: /must be a whole number from 1 to 65535/ },
    { name: "edgePort above 65535", stack: "staging", key: "edgePort", change: (r) => (r.edgePort = plain("80800")), says: /must be a whole number from 1 to 65535/ },

    // daemon.json overrides: the key, and the setting to use instead.
    { name: "daemonExtra sets log-opts", stack: "staging", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"log-opts":{"max-size":"50m"}}')), says: /key "log-opts" is managed by medusa-deploy.*medusa-deploy:dockerLogMaxSize.*medusa-deploy:dockerLogMaxFile/ },
    { name: "daemonExtra sets builder", stack: "staging", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"builder":{"gc":{"enabled":true,"defaultKeepStorage":"50GB"}}}')), says: /key "builder" is managed.*medusa-deploy:buildkitKeepStorage/ },
    { name: "daemonExtra turns live-restore off", stack: "prod", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"live-restore":false}')), says: /key "live-restore" is managed.*set medusa-deploy:manageDaemon to false/ },
    { name: "daemonExtra sets features", stack: "prod", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"features":{"containerd-snapshotter":true}}')), says: /key "features" is managed.*set medusa-deploy:manageDaemon to false and edit/ },
    { name: "daemonExtra moves data-root", stack: "staging", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"data-root":"/mnt/docker"}')), says: /key "data-root" is refused.*protected Postgres.*move it by hand/ },
    { name: "daemonExtra sets hosts", stack: "staging", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"hosts":["tcp://0.0.0.0:2375"]}')), says: /key "hosts" is refused.*systemd drop-in/ },
    { name: "daemonExtra sets a log driver without rotation", stack: "prod", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"log-driver":"syslog"}')), says: /key "log-driver" is "syslog".*use "local" or "json-file"/ },
    { name: "daemonExtra misspells registry-mirrors", stack: "staging", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"registry-mirror":["https://mirror.example"]}')), says: /key "registry-mirror" is not a daemon.json option.*did you mean "registry-mirrors"/ },
    { name: "daemonExtra registry-mirrors as a string", stack: "staging", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"registry-mirrors":"https://mirror.example"}')), says: /key "registry-mirrors" must be a list, e\.g\. \{"registry-mirrors": \["…"\]\}, got string/ },
    { name: "daemonExtra where nothing applies it", stack: "staging", key: "daemonExtra", change: (r) => { r.manageDaemon = plain("false"); r.daemonExtra = plain('{"registry-mirrors":["https://mirror.example"]}'); }, says: /manageDaemon is false, so nothing writes it.*set medusa-deploy:manageDaemon to true/ },
    { name: "daemonExtra opens a TLS Docker API", stack: "staging", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"tlsverify":false,"tlscert":"/etc/x.pem"}')), says: /key "tlsverify" is refused: it configures a TCP listener for the Docker API/ },
    { name: "daemonExtra adds an authorization plugin", stack: "prod", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"authorization-plugins":["evil"]}')), says: /key "authorization-plugins" is refused/ },
    { name: "daemonExtra names a runtime binary", stack: "staging", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"runtimes":{"x":{"path":"/tmp/x"}}}')), says: /key "runtimes" is refused: it names binaries dockerd runs as root/ },
    { name: "daemonExtra key outside the allow-list", stack: "staging", key: "daemonExtra", change: (r) => (r.daemonExtra = plain('{"some-future-option":true}')), says: /key "some-future-option" is not a daemon.json option medusa-deploy merges: daemonExtra takes only registry-mirrors, .*with manageDaemon false/ },

    // Images beside the data: pinned by digest outside a dev sandbox.
    { name: "edgeImage as a moving tag on prod", stack: "prod", key: "edgeImage", change: (r) => (r.edgeImage = plain("haproxy:2.8")), says: /is required on stack "prod" as an image pinned by digest, and "haproxy:2.8" \(the default\) is a tag without one.*RepoDigests.*allowMutableImages edgeImage/ },
    { name: "postgresImage as a moving tag on staging", stack: "staging", key: "postgresImage", change: (r) => (r.postgresImage = plain("postgres:16.4")), says: /is required on stack "staging" as an image pinned by digest, and "postgres:16.4" is a tag without one/ },
    { name: "redisImage left at its tag-only default on prod", stack: "prod", key: "redisImage", change: (r) => delete r.redisImage, says: /is required on stack "prod" as an image pinned by digest, and "redis:7" \(the default\)/ },
    { name: "allowMutableImages names something else", stack: "staging", key: "allowMutableImages", change: (r) => (r.allowMutableImages = plain("edgeImage,nodeImage")), says: /names "nodeImage", which is not an image setting that must be pinned: use a comma-separated list of edgeImage, postgresImage, redisImage/ },

    // The users the app and the edge run as.
    { name: "appUser root", stack: "staging", key: "appUser", change: (r) => (r.appUser = plain("0:0")), says: /must not be root \(uid or gid 0\)/ },
    { name: "appUser by name", stack: "dev", key: "appUser", change: (r) => (r.appUser = plain("medusa")), says: /must be a numeric uid:gid such as 70001:70001, got "medusa"/ },
    { name: "edgeUser nobody", stack: "prod", key: "edgeUser", change: (r) => (r.edgeUser = plain("65534:65534")), says: /must not be nobody\/nogroup/ },
    { name: "appUser of an existing account on the local host", stack: "dev", key: "appUser", change: (r) => (r.appUser = plain("1:1")), says: /1:1 collides with this host's accounts \(uid 1 is the host account "daemon", gid 1 is the host group "daemon"\)/ },
    { name: "appUser on a promoting stack", stack: "prod", key: "appUser", change: (r) => (r.appUser = plain("70011:70011")), says: /is a build setting, but this stack promotes from staging/ },

    // Edge limits and the build network.
    { name: "edgeClientConnections of 0", stack: "staging", key: "edgeClientConnections", change: (r) => (r.edgeClientConnections = plain("0")), says: /must be a whole number from 1 to 100000/ },
    { name: "edgeClientRequestsPer10s as a rate", stack: "prod", key: "edgeClientRequestsPer10s", change: (r) => (r.edgeClientRequestsPer10s = plain("500/s")), says: /must be a whole number from 1 to 10000000/ },
    { name: "buildNetwork none", stack: "staging", key: "buildNetwork", change: (r) => (r.buildNetwork = plain("none")), says: /must be `bridge` .* or `host`/ },

    // appPath: the build context.
    { name: "appPath climbs to the root folder", stack: "staging", key: "appPath", change: (r) => (r.appPath = plain("../../../../../../..")), says: /is the root folder, which holds your home folder|is the root folder, which would be sent whole/ },
    { name: "appPath is a folder outside the project and outside git", stack: "dev", key: "appPath", change: (r) => (r.appPath = plain(appOutsideGit)), says: /outside this project and not in a git repository/ },
    { name: "buildkitKeepStorage of zero", stack: "staging", key: "buildkitKeepStorage", change: (r) => (r.buildkitKeepStorage = plain("0GB")), says: /must be more than 0 bytes.*e.g. 10GB/ },

    // hostStateDir: shared, volatile, system, relative, unexpanded, too long, world-writable.
    { name: "hostStateDir in /tmp", stack: "staging", key: "hostStateDir", change: (r) => (r.hostStateDir = plain("/tmp/medusa-staging")), says: /is under \/tmp, a folder every local user can write.*e.g. \/var\/lib\/medusa-deploy\/staging/ },
    { name: "hostStateDir in /var/tmp", stack: "prod", key: "hostStateDir", change: (r) => (r.hostStateDir = plain("/var/tmp/medusa")), says: /is under \/var\/tmp.*e.g. \/var\/lib\/medusa-deploy\/prod/ },
    { name: "hostStateDir in /dev/shm", stack: "dev", key: "hostStateDir", change: (r) => (r.hostStateDir = plain("/dev/shm/medusa")), says: /is under \/dev\/shm.*e.g. \/home\/shop\/.medusa-deploy\/dev/ },
    { name: "hostStateDir /tmp itself", stack: "dev", key: "hostStateDir", change: (r) => (r.hostStateDir = plain("/tmp")), says: /is under \/tmp.*own/ },
    { name: "hostStateDir in /run", stack: "staging", key: "hostStateDir", change: (r) => (r.hostStateDir = plain("/run/medusa")), says: /emptied at every boot.*e.g. \/var\/lib\/medusa-deploy\/staging/ },
    { name: "hostStateDir in Docker's data", stack: "prod", key: "hostStateDir", change: (r) => (r.hostStateDir = plain("/var/lib/docker/medusa")), says: /belongs to the system or to Docker.*e.g. \/var\/lib\/medusa-deploy\/prod/ },
    { name: "hostStateDir relative", stack: "staging", key: "hostStateDir", change: (r) => (r.hostStateDir = plain("state/staging")), says: /must be an absolute path.*e.g. \/var\/lib\/medusa-deploy\/staging/ },
    { name: "hostStateDir with ~", stack: "dev", key: "hostStateDir", change: (r) => (r.hostStateDir = plain("~/.medusa-deploy/dev")), says: /starts with "~".*write the full path, e.g. \/home\/shop\/.medusa-deploy\/dev/ },
    { name: "hostStateDir too long for the admin socket", stack: "staging", key: "hostStateDir", change: (r) => (r.hostStateDir = plain(`/var/lib/${"medusa-deploy-".repeat(7)}staging`)), says: /would exceed the 107-byte limit of a UNIX socket path; use a shorter folder/ },
    { name: "hostStateDir world-writable on this machine", stack: "dev", key: "hostStateDir", change: (r) => (r.hostStateDir = plain(path.join(worldWritable, "state"))), says: /(which|a folder) every local user can write( \(mode 777\))?.*e.g. \/home\/shop\/.medusa-deploy\/dev/ }, // "is under /tmp" when the checkout itself is there
    { name: "the default hostStateDir under a home in /tmp", stack: "dev", key: "hostStateDir", homeDir: path.join(os.tmpdir(), "home-shop"), change: () => undefined, says: /is under \/tmp.*e\.g\. \/home\/<you>\/.medusa-deploy\/dev \(the default for host `local`; set medusa-deploy:hostStateDir\)/ },

    // URLs and CORS origins.
    { name: "publicUrl without a scheme", stack: "prod", key: "publicUrl", change: (r) => (r.publicUrl = plain("shop.example.com")), says: /must be the origin the shop is reached at, scheme:\/\/host\[:port\] such as https:\/\/shop.example.com: "shop.example.com" is not an http/ },
    { name: "publicUrl with a path", stack: "staging", key: "publicUrl", change: (r) => (r.publicUrl = plain("https://staging.shop.example.com/store")), says: /has a path \("\/store"\).*scheme:\/\/host\[:port\] only/ },
    { name: "publicUrl over http on prod", stack: "prod", key: "publicUrl", change: (r) => (r.publicUrl = plain("http://shop.example.com")), says: /must use https:\/\/ on stack "prod".*set e.g. https:\/\/shop.example.com/ },
    { name: "publicUrl left to its default while serving 0.0.0.0", stack: "prod", key: "publicUrl", change: (r) => { delete r.publicUrl; r.edgeAddress = plain("0.0.0.0"); r.edgePort = plain("80"); }, says: /must be set when the edge listens beyond loopback \(edgeAddress 0.0.0.0\).*e.g. https:\/\/shop.example.com/ },
    { name: "storeCors with a trailing slash", stack: "prod", key: "storeCors", change: (r) => (r.storeCors = plain("https://shop.example.com/")), says: /has the entry "https:\/\/shop.example.com\/", which ends with "\/".*write https:\/\/shop.example.com/ },
    { name: "adminCors is a wildcard", stack: "staging", key: "adminCors", change: (r) => (r.adminCors = plain("*")), says: /has the entry "\*", which is a wildcard.*list the origins.*comma-separated origins such as/ },
    { name: "authCors with a space after the comma", stack: "prod", key: "authCors", change: (r) => (r.authCors = plain("https://shop.example.com, https://admin.example.com")), says: /has spaces around it.*without spaces/ },
    { name: "storeCors with a path", stack: "staging", key: "storeCors", change: (r) => (r.storeCors = plain("https://shop.example.com/app")), says: /has a path \("\/app"\)/ },
    { name: "edgeAddress localhost", stack: "dev", key: "edgeAddress", change: (r) => (r.edgeAddress = plain("localhost")), says: /must be an IPv4 address such as 127.0.0.1 or 0.0.0.0 \(for localhost write 127.0.0.1\)/ },

    // Environment names.
    { name: "a secret-looking variable in plain appEnv", stack: "prod", key: "appEnv", change: (r) => (r.appEnv = plain('{"STRIPE_SECRET_KEY":"sk_live_x"}')), says: /sets STRIPE_SECRET_KEY, which looks like a secret, in plain text.*move it to appSecretEnv/ },
    { name: "one variable in appEnv and appSecretEnv", stack: "staging", key: "appSecretEnv", change: (r) => { r.appEnv = plain('{"SENTRY_DSN":"x"}'); r.appSecretEnv = secret('{"SENTRY_DSN":"y"}'); }, says: /and appEnv both set SENTRY_DSN: keep it in one of them/ },

    // Images, platforms, registries, release names.
    { name: "platform without the os", stack: "staging", key: "platform", change: (r) => (r.platform = plain("amd64")), says: /must be one of linux\/amd64, linux\/arm64 \(did you mean linux\/amd64\?\)/ },
    { name: "nodeImage too old for Medusa v2", stack: "staging", key: "nodeImage", change: (r) => (r.nodeImage = plain("node:18-bookworm-slim")), says: /is Node.js 18, but Medusa v2 needs Node.js 20 or newer: use e.g. node:20-bookworm-slim/ },
    { name: "edgeImage too old for the switch", stack: "prod", key: "edgeImage", change: (r) => (r.edgeImage = plain("haproxy:2.4")), says: /is HAProxy 2.4, but the traffic switch needs 2.6 or newer.*haproxy:2.8/ },
    { name: "postgresImage on a moving tag", stack: "prod", key: "postgresImage", change: (r) => (r.postgresImage = plain("postgres:latest")), says: /must pin a major version, e.g. postgres:16/ },
    { name: "registry with a scheme", stack: "staging", key: "registry", change: (r) => (r.registry = plain("https://registry.example.com/shop/medusa")), says: /without tag or digest.*e.g. `registry.example.com\/shop\/medusa` \(without the scheme/ },
    { name: "the dev registry outside the local registry", stack: "dev", key: "registry", change: (r) => (r.registry = plain("docker.io/shop/medusa")), says: /must be in the local registry, e.g. localhost:5000\/medusa-store, when localRegistryPort is 5000/ },
    { name: "release named like the base image's tag", stack: "staging", key: "release", change: (r) => (r.release = plain("base")), says: /"base" is the tag of the system-packages base image.*Choose another name/ },
    { name: "release named like the build cache's tag", stack: "staging", key: "release", change: (r) => (r.release = plain("buildcache")), says: /"buildcache" is the tag of the build cache \(cacheRef\).*Choose another name/ },
    { name: "release AUTO in capitals", stack: "staging", key: "release", change: (r) => (r.release = plain("AUTO")), says: /must be written `auto` \(lowercase\)/ },

    // The switch watch and the BuildKit image.
    { name: "switchWatchSeconds negative", stack: "prod", key: "switchWatchSeconds", change: (r) => (r.switchWatchSeconds = plain("-1")), says: /must be a whole number from 0 to 3600 \(seconds; 0 disables the watch\)/ },
    { name: "switchWatchSeconds with a unit", stack: "staging", key: "switchWatchSeconds", change: (r) => (r.switchWatchSeconds = plain("30s")), says: /must be a whole number from 0 to 3600.*\(in seconds, without a unit: 30s is 30\)/ },
    { name: "healthTimeoutSeconds in minutes", stack: "prod", key: "healthTimeoutSeconds", change: (r) => (r.healthTimeoutSeconds = plain("10m")), says: /must be a whole number from 30 to 3600 \(seconds\) \(in seconds, without a unit: 10m is 600\)/ },
    { name: "switchWatchMaxErrorRate zero", stack: "prod", key: "switchWatchMaxErrorRate", change: (r) => (r.switchWatchMaxErrorRate = plain("0")), says: /must be a fraction more than 0 and at most 1, e.g. 0.05/ },
    { name: "switchWatchMaxErrorRate as a percentage", stack: "staging", key: "switchWatchMaxErrorRate", change: (r) => (r.switchWatchMaxErrorRate = plain("5")), says: /more than 0 and at most 1.*\(for 5% write 0.05\)/ },
    { name: "switchWatchMaxErrorRate not a number", stack: "dev", key: "switchWatchMaxErrorRate", change: (r) => (r.switchWatchMaxErrorRate = plain("low")), says: /must be a fraction more than 0 and at most 1/ },
    { name: "buildkitImage in capitals", stack: "staging", key: "buildkitImage", change: (r) => (r.buildkitImage = plain("Moby/BuildKit:v0.17.3")), says: /must be an image reference such as moby\/buildkit:v0.17.3/ },
    { name: "buildkitImage on a stack that never builds", stack: "prod", key: "buildkitImage", change: (r) => (r.buildkitImage = plain("moby/buildkit:v0.17.3")), says: /is a build setting, but this stack promotes from .* and never builds: remove it/ },

    // Settings that would have no effect.
    { name: "postgresPassword next to databaseUrl", stack: "staging", key: "postgresPassword", change: (r) => (r.databaseUrl = secret(strongSecret("databaseUrl"))), says: /databaseUrl is too, so no Postgres container is run.*remove one of them/ },
    { name: "log rotation without manageDaemon", stack: "dev", key: "dockerLogMaxSize", change: (r) => (r.dockerLogMaxSize = plain("50m")), says: /manageDaemon is false, so nothing writes it to daemon.json: set medusa-deploy:manageDaemon to true/ },
    { name: "an ssh key on a local host", stack: "dev", key: "sshPrivateKey", change: (r) => (r.sshPrivateKey = secret(fakeOpenSshPrivateKey())), says: /is set but host is `local`.*remove it/ },
];

describe("operator mistakes are refused before anything is declared", function () {
    this.timeout(60000);

    before(() => {
        fs.mkdirSync(noLockApp, { recursive: true });
        fs.writeFileSync(path.join(noLockApp, "package.json"), JSON.stringify({ name: "shop", scripts: { build: "medusa build" } }));
        fs.mkdirSync(appOutsideGit, { recursive: true });
        fs.writeFileSync(path.join(appOutsideGit, "package.json"), JSON.stringify({ name: "shop", scripts: { build: "medusa build" } }));
        fs.writeFileSync(path.join(appOutsideGit, "package-lock.json"), "{}");
        fs.mkdirSync(noBuildApp, { recursive: true });
        fs.writeFileSync(path.join(noBuildApp, "package.json"), JSON.stringify({ name: "shop", scripts: { start: "medusa start" } }));
        fs.writeFileSync(path.join(noBuildApp, "package-lock.json"), "{}");
        fs.mkdirSync(worldWritable, { recursive: true });
        fs.chmodSync(worldWritable, 0o777);
    });
    after(() => {
        fs.rmSync(scratch, { recursive: true, force: true });
        fs.rmSync(worldWritable, { recursive: true, force: true });
    });

    it("has at least 40 cases, and every stack file they start from is valid as shipped", () => {
        assert.ok(cases.length >= 40, `${cases.length} cases`);
        for (const stack of ["dev", "staging", "prod"]) assert.doesNotThrow(() => parseDeployConfig(stackFile(stack), { stack, homeDir: "/home/shop" }));
    });

    it("the mock run records resources when the settings are valid (so an empty list means something)", async () => {
        const run = await runUnderMocks("dev", stackFile("dev"), "/home/shop");
        assert.equal(run.error, undefined, String(run.error));
        assert.ok(run.declared.some((d) => d.startsWith("docker:index/container:Container ")), run.declared.join("\n"));
    });

    for (const c of cases) {
        it(`${c.stack}: ${c.name} -> ${PROJECT_NAME}:${c.key}`, async () => {
            const raw = stackFile(c.stack);
            c.change(raw);
            const homeDir = c.homeDir ?? "/home/shop";
            const error = thrownBy(() => parseDeployConfig(raw, { stack: c.stack, homeDir }));
            assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
            const named = error.problems.filter((p) => p.startsWith(`${PROJECT_NAME}:${c.key} `));
            assert.ok(named.length > 0, `no problem names ${PROJECT_NAME}:${c.key}:\n${error.problems.join("\n")}`);
            assert.ok(named.some((p) => c.says.test(p)), `no problem about ${c.key} says ${c.says}:\n${named.join("\n")}`);
            // Real secrets are long; short "secrets" here are placeholders that may equal a message's advice.
            for (const value of Object.values(raw).filter((s) => s.secret && s.value.length >= 24)) {
                assert.ok(!error.message.includes(value.value), "a secret value appears in the message");
            }
            const run = await runUnderMocks(c.stack, raw, homeDir);
            assert.ok(run.error instanceof Error, "the program ran to the end");
            assert.ok(run.error.message.includes(`${PROJECT_NAME}:${c.key} `), run.error.message);
            assert.deepEqual(run.declared, [], "resources were declared before the settings were refused");
        });
    }

    it("a stack with one mistake of every kind gets all of them in one error", () => {
        const raw = stackFile("prod");
        raw.jwtSecret = secret("supersecret");
        raw.promoteFrom = plain("organization/medusa-deploy/prod");
        raw.edgePort = plain("5432");
        raw.daemonExtra = plain('{"log-opts":{"max-size":"1g"}}');
        raw.hostStateDir = plain("/tmp/prod");
        raw.publicUrl = plain("http://shop.example.com/");
        raw.switchWatchMaxErrorRate = plain("2");
        raw.buildkitKeepStorage = plain("0GB");
        raw.platform = plain("linux/s390x");
        raw.devDefaults = plain("true");
        const error = thrownBy(() => parseDeployConfig(raw, { stack: "prod", homeDir: "/home/shop" }));
        assert.ok(error instanceof ConfigError);
        const keys = new Set(error.problems.map((p) => /^medusa-deploy:(\w+) /.exec(p)?.[1]));
        for (const key of ["jwtSecret", "promoteFrom", "edgePort", "daemonExtra", "hostStateDir", "publicUrl", "switchWatchMaxErrorRate", "buildkitKeepStorage", "platform", "devDefaults"]) {
            assert.ok(keys.has(key), `${key} missing from:\n${error.message}`);
        }
    });

    it("an unreadable host does not hide the checks that depend on it", () => {
        const raw = stackFile("staging");
        raw.host = plain("deploy@staging.shop.example.com");
        raw.devDefaults = plain("true");
        raw.jwtSecret = secret("changeme");
        raw.localRegistryPort = plain("5000");
        const error = thrownBy(() => parseDeployConfig(raw, { stack: "staging", homeDir: "/home/shop" }));
        assert.ok(error instanceof ConfigError);
        const text = error.problems.join("\n");
        assert.match(text, /medusa-deploy:host must be `local` or `ssh:\/\/user@host\[:port\]` \(did you mean ssh:\/\/deploy@staging.shop.example.com\?\)/);
        assert.match(text, /medusa-deploy:devDefaults must be false/);
        assert.match(text, /medusa-deploy:jwtSecret is too weak/);
        assert.match(text, /medusa-deploy:localRegistryPort is only for host `local`/);
    });
});

describe("what the settings check accepts", () => {
    const parse = (stack: string, change: (raw: RawConfig) => void) => {
        const raw = stackFile(stack);
        change(raw);
        return parseDeployConfig(raw, { stack, homeDir: "/home/shop" });
    };

    it("weak values and devDefaults on the loopback dev stack", () => {
        const config = parse("dev", (r) => (r.jwtSecret = secret("supersecret")));
        assert.equal(config.app.jwtSecret.reveal(), "supersecret");
        assert.equal(config.devDefaults, true);
    });

    it("promotion from another organization's stack of the same name, when the organization is known", () => {
        const raw = stackFile("prod");
        raw.promoteFrom = plain("acme-staging/medusa-deploy/prod");
        const config = parseDeployConfig(raw, { stack: "prod", homeDir: "/home/shop", organization: "acme" });
        assert.deepEqual(config.image, { kind: "promote", fromStack: "acme-staging/medusa-deploy/prod" });
    });

    it("CORS lists of origins and regular expressions, https URLs, 80 and 443", () => {
        const config = parse("prod", (r) => {
            r.storeCors = plain("https://shop.example.com,https://www.shop.example.com,/\\.vercel\\.app$/");
            r.edgeAddress = plain("0.0.0.0");
            r.edgePort = plain("443");
            r.publicUrl = plain("https://shop.example.com/");
        });
        assert.equal(config.edge.publicUrl, "https://shop.example.com");
        assert.equal(config.app.authCors, "https://shop.example.com");
    });

    it("the new settings: defaults, and values as set", () => {
        const defaults = parse("staging", () => undefined);
        assert.deepEqual(defaults.switchWatch, { seconds: 30, maxErrorRate: 0.05 });
        assert.equal(defaults.daemon.buildkitImage, undefined);
        const set = parse("staging", (r) => {
            r.switchWatchSeconds = plain("0");
            r.switchWatchMaxErrorRate = plain("1");
            r.buildkitImage = plain("medusa-deploy/buildkit:local");
        });
        assert.deepEqual(set.switchWatch, { seconds: 0, maxErrorRate: 1 });
        assert.equal(set.daemon.buildkitImage, "medusa-deploy/buildkit:local");
    });

    it("random secrets of the minimum length always pass", () => {
        for (let i = 0; i < 200; i++) {
            assert.doesNotThrow(() =>
                parse("prod", (r) => {
                    r.jwtSecret = secret(randomBytes(16).toString("hex"));
                    r.cookieSecret = secret(randomBytes(24).toString("base64"));
                    r.postgresPassword = secret(randomBytes(8).toString("hex"));
                }),
            );
        }
    });

    it("daemonExtra keys on the allow-list pass through", () => {
        const config = parse("staging", (r) => (r.daemonExtra = plain('{"registry-mirrors":["https://mirror.example"],"max-concurrent-downloads":6}')));
        assert.deepEqual(Object.keys(config.daemon.extra), ["registry-mirrors", "max-concurrent-downloads"]);
    });

    it("images pinned by digest, or named in allowMutableImages, outside a dev sandbox", () => {
        const config = parse("prod", (r) => {
            r.edgeImage = plain("haproxy:2.8");
            r.allowMutableImages = plain("edgeImage");
        });
        assert.equal(config.edge.image, "haproxy:2.8");
        assert.match(config.services.postgres.kind === "container" ? config.services.postgres.image : "", /^postgres:16@sha256:[0-9a-f]{64}$/);
    });
});
