import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { thrownBy } from "../support/thrown";
import { ConfigError, DeployConfig, parseDeployConfig, RawConfig } from "../../lib/deployConfig";
import { fakeHostKey, fakeOpenSshPrivateKey, requiredSettingValue, strongSecret } from "./fixtureSecrets";

const ctx = (stack: string) => ({ stack, homeDir: "/home/shop" });
const plain = (value: string) => ({ value, secret: false });
const secret = (value: string) => ({ value, secret: true });

/** A valid staging stack: every test starts from it and breaks one thing. */
function stagingConfig(): RawConfig {
    return {
        host: plain("ssh://deploy@staging.example.com:2222"),
        sshPrivateKey: secret(fakeOpenSshPrivateKey()),
        sshHostKey: plain(fakeHostKey()),
        registry: plain("registry.example.com/shop/medusa"),
        jwtSecret: secret(strongSecret("jwtSecret")),
        cookieSecret: secret(strongSecret("cookieSecret")),
        postgresPassword: secret(strongSecret("postgresPassword")),
        ...pinnedImages(),
    };
}

/** The images a stack outside a dev sandbox must pin by digest. */
function pinnedImages(): RawConfig {
    return Object.fromEntries(["edgeImage", "postgresImage", "redisImage"].map((key) => [key, plain(requiredSettingValue(key))]));
}

function problemsOf(raw: RawConfig, stack = "staging"): string[] {
    const error = thrownBy(() => parseDeployConfig(raw, ctx(stack)));
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.problems;
}

describe("stack configuration", () => {
    it("takes an empty systemPackages as no system packages, and an unset one as the default list", () => {
        const none = parseDeployConfig({ ...stagingConfig(), systemPackages: plain("") }, ctx("staging"));
        assert.equal(none.image.kind === "build" && none.image.systemPackages, "");
        const unset = parseDeployConfig(stagingConfig(), ctx("staging"));
        assert.match(unset.image.kind === "build" ? unset.image.systemPackages : "", /^chromium /);
    });

    it("applies defaults to a minimal staging stack", () => {
        const config: DeployConfig = parseDeployConfig(stagingConfig(), ctx("staging"));
        assert.deepEqual(
            { ...config.host, privateKey: undefined },
            { kind: "ssh", user: "deploy", hostname: "staging.example.com", port: 2222, privateKey: undefined, hostKey: fakeHostKey() },
        );
        assert.equal(config.sudo, true);
        assert.equal(config.hostStateDir, "/var/lib/medusa-deploy/staging");
        assert.equal(config.daemon.manage, true);
        assert.equal(config.daemon.buildkitKeepStorage, "10GB");
        assert.equal(config.release, "auto");
        assert.deepEqual(config.image.kind === "build" && [config.image.cacheRef, config.image.platform], ["registry.example.com/shop/medusa:buildcache", "linux/amd64"]);
        assert.equal(config.services.postgres.kind, "container");
        assert.equal(config.edge.publicUrl, "http://127.0.0.1:8080");
        assert.equal(config.app.storeCors, "http://127.0.0.1:8080");
    });

    it("a dev stack defaults to the local Docker and, with devDefaults, dev-only secrets", () => {
        const config = parseDeployConfig({ registry: plain("localhost:5000/medusa-store"), devDefaults: plain("true"), localRegistryPort: plain("5000") }, ctx("dev"));
        assert.equal(config.host.kind, "local");
        assert.equal(config.sudo, false);
        assert.equal(config.daemon.manage, false);
        assert.equal(config.hostStateDir, "/home/shop/.medusa-deploy/dev");
        assert.match(config.app.jwtSecret.reveal(), /^dev-only-/);
        assert.deepEqual(config.localRegistry, { port: 5000 });
    });

    it("a promoting stack has no build settings", () => {
        const raw = stagingConfig();
        delete raw.registry;
        raw.promoteFrom = plain("organization/medusa-deploy/staging");
        const config = parseDeployConfig(raw, ctx("prod"));
        assert.deepEqual(config.image, { kind: "promote", fromStack: "organization/medusa-deploy/staging" });
    });

    it("never shows a secret value, even in errors", () => {
        const raw = stagingConfig();
        raw.databaseUrl = secret("mysql://root:hunter2@db");
        const error = thrownBy(() => parseDeployConfig(raw, ctx("staging")));
        assert.ok(error instanceof ConfigError);
        assert.doesNotMatch(error.message, /hunter2/);
        const ok = parseDeployConfig(stagingConfig(), ctx("staging"));
        assert.doesNotMatch(JSON.stringify(ok), /s3cret|OPENSSH/);
        assert.equal(String(ok.app.jwtSecret), "[secret]");
    });

    it("collects every problem into one error", () => {
        const raw = stagingConfig();
        raw.platform = plain("linux/s390x");
        raw.edgePort = plain("70000");
        raw.release = plain("has spaces");
        const problems = problemsOf(raw);
        assert.equal(problems.length, 3, problems.join("\n"));
    });

    const bad: Array<{ name: string; change: (raw: RawConfig) => void; stack?: string; message: RegExp }> = [
        { name: "host that is neither local nor ssh", change: (r) => (r.host = plain("tcp://10.0.0.5:2375")), message: /medusa-deploy:host must be `local` or `ssh:\/\/user@host\[:port\]` \(medusa-deploy reaches a remote Docker only through ssh.*\), got "tcp:\/\/10.0.0.5:2375"/ },
        { name: "ssh host without user", change: (r) => (r.host = plain("ssh://staging.example.com")), message: /medusa-deploy:host must be `local` or `ssh:\/\/user@host\[:port\]`/ },
        { name: "ssh port out of range", change: (r) => (r.host = plain("ssh://deploy@host:99999")), message: /medusa-deploy:host has port 99999; valid ports are 1-65535/ },
        { name: "staging stack without host", change: (r) => delete r.host, message: /medusa-deploy:host must be set for stack "staging" \(only dev stacks default to the local Docker\)/ },
        { name: "prod stack without host", stack: "prod", change: (r) => delete r.host, message: /medusa-deploy:host must be set for stack "prod"/ },
        { name: "ssh host without a pinned host key", change: (r) => delete r.sshHostKey, message: /medusa-deploy:sshHostKey is required for an ssh host: every connection checks the host against it. Read it on staging.example.com: `cat \/etc\/ssh\/ssh_host_ed25519_key.pub`/ },
        { name: "host key that is a private key", change: (r) => (r.sshHostKey = plain("-----BEGIN OPENSSH PRIVATE KEY-----")), message: /medusa-deploy:sshHostKey must be a public host key as ssh prints it, `<type> <base64>`/ },
        { name: "host key whose blob names another type", change: (r) => (r.sshHostKey = plain(fakeHostKey().replace("ssh-ed25519", "ssh-rsa"))), message: /medusa-deploy:sshHostKey must be a public host key/ },
        { name: "host key on a local host", change: (r) => { r.host = plain("local"); delete r.sshPrivateKey; }, message: /medusa-deploy:sshHostKey is set but host is `local`/ },
        { name: "ssh host without private key", change: (r) => delete r.sshPrivateKey, message: /medusa-deploy:sshPrivateKey is required for an ssh host/ },
        { name: "private key in plain text", change: (r) => (r.sshPrivateKey = plain("-----BEGIN KEY-----")), message: /medusa-deploy:sshPrivateKey is a secret but is set in plain text: run `pulumi config set --secret medusa-deploy:sshPrivateKey <value>`/ },
        { name: "jwtSecret missing", change: (r) => delete r.jwtSecret, message: /medusa-deploy:jwtSecret is required: `pulumi config set --secret medusa-deploy:jwtSecret <value>`/ },
        { name: "cookieSecret in plain text", change: (r) => (r.cookieSecret = plain("x")), message: /medusa-deploy:cookieSecret is a secret but is set in plain text/ },
        { name: "postgresPassword missing without databaseUrl", change: (r) => delete r.postgresPassword, message: /medusa-deploy:postgresPassword is required when databaseUrl is not set/ },
        { name: "databaseUrl not a postgres URL", change: (r) => (r.databaseUrl = secret("mysql://x")), message: /medusa-deploy:databaseUrl must be a URL such as postgres:\/\/user:password@db.example.com:5432\/medusa, a postgres:\/\/ or postgresql:\/\/ URL \(value not shown: it is a secret\)/ },
        { name: "redisUrl not a redis URL", change: (r) => (r.redisUrl = secret("http://x")), message: /medusa-deploy:redisUrl must be a URL such as redis:\/\/.*, a redis:\/\/ or rediss:\/\/ URL/ },
        { name: "registry with a tag", change: (r) => (r.registry = plain("registry.example.com/shop/medusa:latest")), message: /medusa-deploy:registry must be an image repository without tag or digest, lowercase/ },
        { name: "registry in upper case", change: (r) => (r.registry = plain("Registry.example.com/Shop")), message: /medusa-deploy:registry must be an image repository without tag or digest/ },
        { name: "building stack without registry", change: (r) => delete r.registry, message: /medusa-deploy:registry is required for a stack that builds/ },
        { name: "cacheRef without a tag", change: (r) => (r.cacheRef = plain("registry.example.com/shop/cache")), message: /medusa-deploy:cacheRef must be a tagged image reference/ },
        { name: "promoteFrom not a stack name", stack: "prod", change: (r) => { delete r.registry; r.promoteFrom = plain("acme/medusa-deploy/staging/extra"); }, message: /medusa-deploy:promoteFrom must name a stack as `stack`, `project\/stack` or `org\/project\/stack`.*got "acme\/medusa-deploy\/staging\/extra"/ },
        { name: "promoting stack with build settings", stack: "prod", change: (r) => (r.promoteFrom = plain("organization/medusa-deploy/staging")), message: /medusa-deploy:registry is a build setting, but this stack promotes from organization\/medusa-deploy\/staging and never builds/ },
        { name: "platform not supported", change: (r) => (r.platform = plain("linux/s390x")), message: /medusa-deploy:platform must be one of linux\/amd64, linux\/arm64, got "linux\/s390x"/ },
        { name: "release not usable as an image tag", change: (r) => (r.release = plain("v1/beta")), message: /medusa-deploy:release must be `auto` or a name of letters, digits/ },
        { name: "edgePort not a port", change: (r) => (r.edgePort = plain("http")), message: /medusa-deploy:edgePort must be a whole number from 1 to 65535 \(a TCP port\), got "http"/ },
        { name: "edgeAddress not IPv4", change: (r) => (r.edgeAddress = plain("localhost")), message: /medusa-deploy:edgeAddress must be an IPv4 address/ },
        { name: "buildkitKeepStorage without unit", change: (r) => (r.buildkitKeepStorage = plain("10")), message: /medusa-deploy:buildkitKeepStorage must be a size such as 10GB or 512MB/ },
        { name: "dockerLogMaxFile out of range", change: (r) => (r.dockerLogMaxFile = plain("0")), message: /medusa-deploy:dockerLogMaxFile must be a whole number from 1 to 100, got "0"/ },
        { name: "sudo not a boolean", change: (r) => (r.sudo = plain("yes")), message: /medusa-deploy:sudo must be true or false, got "yes"/ },
        { name: "healthTimeoutSeconds too short", change: (r) => (r.healthTimeoutSeconds = plain("5")), message: /medusa-deploy:healthTimeoutSeconds must be a whole number from 30 to 3600/ },
        { name: "hostStateDir relative", change: (r) => (r.hostStateDir = plain("state/dir")), message: /medusa-deploy:hostStateDir "state\/dir" must be an absolute path/ },
        { name: "daemonExtra not an object", change: (r) => (r.daemonExtra = plain("[1,2]")), message: /medusa-deploy:daemonExtra must be an object/ },
        { name: "appEnv overriding a managed variable", change: (r) => (r.appEnv = plain('{"DATABASE_URL":"x"}')), message: /medusa-deploy:appEnv must not set DATABASE_URL: the deployment sets it/ },
        { name: "a secret env value with a line break", change: (r) => (r.appSecretEnv = secret('{"STRIPE_KEY":"a\\nb"}')), message: /medusa-deploy:appSecretEnv value of STRIPE_KEY must be one line \(value not shown: it is a secret\)/ },
        { name: "devDefaults on a remote host", change: (r) => (r.devDefaults = plain("true")), message: /medusa-deploy:devDefaults must be false on stack "staging": its dev-only secrets are published.*Here "staging" is not a dev stack name, host is not `local`/ },
        { name: "registry user without password", change: (r) => (r.registryUsername = plain("ci")), message: /medusa-deploy:registryPassword is required when registryUsername is set/ },
        { name: "unknown setting, with a suggestion", change: (r) => (r.edgeport = plain("80")), message: /medusa-deploy:edgeport is not a setting of this project \(did you mean edgePort\?\)/ },
        { name: "local registry on a remote host", change: (r) => (r.localRegistryPort = plain("5000")), message: /medusa-deploy:localRegistryPort is only for host `local`/ },
    ];

    for (const c of bad) {
        it(`rejects ${c.name}`, () => {
            const raw = stagingConfig();
            c.change(raw);
            const problems = problemsOf(raw, c.stack);
            assert.ok(problems.some((p) => c.message.test(p)), `no problem matched ${c.message}:\n${problems.join("\n")}`);
        });
    }

    it("the error message names the stack and says nothing was changed", () => {
        const raw = stagingConfig();
        raw.platform = plain("linux/s390x");
        assert.throws(() => parseDeployConfig(raw, ctx("staging")), /^ConfigError: Stack "staging" has 1 invalid setting \(nothing was changed\):\n  - medusa-deploy:platform/);
    });

    it("maintenancePageFile: the shop's page is read from the project folder; a missing, empty or too large one is refused by name", () => {
        const repo = path.resolve(__dirname, "../..");
        fs.mkdirSync(path.join(repo, ".test-work"), { recursive: true });
        const dir = fs.mkdtempSync(path.join(repo, ".test-work/page-"));
        const relative = (file: string) => path.relative(repo, path.join(dir, file));
        try {
            fs.writeFileSync(path.join(dir, "maintenance.html"), "<h1>Back at 10:00</h1>");
            const config = parseDeployConfig({ ...stagingConfig(), maintenancePageFile: plain(relative("maintenance.html")), promotion: plain("manual") }, ctx("staging"));
            assert.equal(config.edge.maintenancePage, "<h1>Back at 10:00</h1>");
            assert.equal(config.promotion, "manual");
            assert.equal(parseDeployConfig(stagingConfig(), ctx("staging")).edge.maintenancePage, undefined, "unset: the built-in page");
            assert.equal(parseDeployConfig(stagingConfig(), ctx("staging")).promotion, "auto");

            fs.writeFileSync(path.join(dir, "empty.html"), "");
            fs.writeFileSync(path.join(dir, "big.html"), "x".repeat(13 * 1024));
            const withDir = (file: string) => {
                const error = thrownBy(() => parseDeployConfig({ ...stagingConfig(), maintenancePageFile: plain(relative(file)) }, ctx("staging")));
                assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
                return error.problems.join("\n");
            };
            assert.match(withDir("missing.html"), /medusa-deploy:maintenancePageFile must name a readable HTML file .*missing\.html: ENOENT/);
            assert.match(withDir("empty.html"), /maintenancePageFile.*empty\.html: the maintenance page is empty/);
            assert.match(withDir("big.html"), /maintenancePageFile.*big\.html: the maintenance page is 13312 bytes; at most 12288/);
            assert.match(problemsOf({ ...stagingConfig(), promotion: plain("Manual") }).join("\n"), /medusa-deploy:promotion must be `auto` .* or `manual` .*got "Manual"/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
