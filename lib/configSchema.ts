// Every stack setting in one table: its type, default, meaning and which stacks use it. Pulumi.yaml's
// `config:` block and the README's reference are checked against this table by the tests, so the
// three cannot drift.

export const PROJECT_NAME = "medusa-deploy";

export type SettingType = "string" | "integer" | "number" | "boolean" | "object";

export interface SettingSpec {
    key: string;
    type: SettingType;
    description: string;
    /** Must be set with `pulumi config set --secret`. */
    secret?: boolean;
    /** A fixed default, also declared in Pulumi.yaml. */
    default?: string | number | boolean;
    /** A default that depends on other settings, described for the reference. */
    computedDefault?: string;
    /** Which stacks need it, for the reference table. */
    usedBy: string;
    /** An empty value means "none" instead of "unset, take the default". */
    emptyMeansNone?: boolean;
}

export const SETTINGS: readonly SettingSpec[] = [
    // Where it deploys
    { key: "host", type: "string", computedDefault: "`local` for dev stacks; required for every other stack", usedBy: "all",
      description: "Docker host: `local` (the Docker of the machine running pulumi) or `ssh://user@host[:port]`." },
    { key: "sshPrivateKey", type: "string", secret: true, usedBy: "ssh hosts",
      description: "Private key text (PEM or OpenSSH, without a passphrase) for the ssh host: `pulumi config set --secret medusa-deploy:sshPrivateKey < ~/.ssh/id_ed25519`." },
    { key: "sshHostKey", type: "string", usedBy: "ssh hosts",
      description: "The ssh host's public host key, pinned: `ssh-ed25519 AAAA…`, the content of the host's /etc/ssh/ssh_host_ed25519_key.pub (read it on the host or from your provider's console, not over the network you are protecting against). Host scripts and Docker's ssh transport check it strictly: a host presenting another key is refused before anything runs." },
    { key: "sudo", type: "boolean", computedDefault: "false for local, true for ssh", usedBy: "all",
      description: "Run host scripts (daemon.json, edge files) with sudo." },
    { key: "hostStateDir", type: "string", computedDefault: "~/.medusa-deploy/<stack> for local, /var/lib/medusa-deploy/<stack> for ssh", usedBy: "all",
      description: "Absolute directory on the host for the edge's config, admin socket and state. Must belong to this stack alone: shared or volatile folders (/tmp, /var/tmp, /dev/shm, /run) and system folders are refused." },
    // Docker daemon and BuildKit
    { key: "manageDaemon", type: "boolean", computedDefault: "false for local, true for ssh", usedBy: "staging, prod",
      description: "Merge the BuildKit, GC, live-restore and log settings into the host's /etc/docker/daemon.json." },
    { key: "buildkitKeepStorage", type: "string", default: "10GB", usedBy: "building stacks",
      description: "Build cache kept by the daemon's and the builder's garbage collection, e.g. `10GB`, `512MB`." },
    { key: "dockerLogMaxSize", type: "string", default: "10m", usedBy: "hosts with manageDaemon",
      description: "json-file log rotation size per container log file, e.g. `10m`, `1g`." },
    { key: "dockerLogMaxFile", type: "integer", default: 3, usedBy: "hosts with manageDaemon",
      description: "json-file log files kept per container (1-100)." },
    { key: "daemonExtra", type: "object", usedBy: "hosts with manageDaemon",
      description: "Further daemon.json keys to merge, e.g. `{\"registry-mirrors\": [\"https://mirror.example\"]}`. Keys medusa-deploy manages (builder, features, live-restore, log-opts) and ones that would hide Docker's data (data-root, storage-driver, userns-remap, hosts) are refused, naming the setting to use instead." },
    { key: "buildkitImage", type: "string", computedDefault: "buildx's default (moby/buildkit, pulled by buildx)", usedBy: "building stacks",
      description: "Image of the BuildKit builder container, e.g. `moby/buildkit:v0.17.3`. Set it on machines that cannot pull from Docker Hub, e.g. to the local image the toolchain script builds." },
    // What it deploys
    { key: "release", type: "string", default: "auto", usedBy: "all",
      description: "Release to serve. `auto`: the app's git commit (building stacks) or the release the source stack serves live (promoting stacks). Setting it to the rollback release switches back instantly." },
    { key: "appPath", type: "string", default: "examples/medusa-store", usedBy: "building stacks",
      description: "Folder of the Medusa v2 app (package.json with a build script, package-lock.json), absolute or relative to this project. Checked before anything else runs." },
    { key: "registry", type: "string", usedBy: "building stacks",
      description: "Image repository the build pushes to, without tag, e.g. `registry.example.com/shop/medusa`." },
    { key: "registryUsername", type: "string", usedBy: "private registries",
      description: "Registry user for pushes and pulls." },
    { key: "registryPassword", type: "string", secret: true, usedBy: "private registries",
      description: "Registry password or token." },
    { key: "cacheRef", type: "string", computedDefault: "<registry>:buildcache", usedBy: "building stacks",
      description: "Registry reference of the BuildKit cache (exported with mode=max)." },
    { key: "platform", type: "string", default: "linux/amd64", usedBy: "building stacks",
      description: "Image platform: `linux/amd64` or `linux/arm64`." },
    { key: "nodeImage", type: "string", default: "node:20-bookworm-slim", usedBy: "building stacks",
      description: "Node.js image of the build stages and of the system-packages base image." },
    { key: "systemPackages", type: "string", default: "chromium fonts-freefont-ttf fonts-noto-color-emoji curl postgresql-client ca-certificates tini", usedBy: "building stacks", emptyMeansNone: true,
      description: "Debian packages in the base image (Chromium and fonts for PDFs, psql, tini as PID 1). Empty for none." },
    { key: "appUser", type: "string", default: "70001:70001", usedBy: "building stacks",
      description: "Numeric uid:gid the app runs as (the image's `medusa` user; promoted stacks run the image as built). Not root, not 65534, and on host `local` not an existing account's: a host account with the app's uid could read its environment, secrets included. Above adduser's 1000-59999 by default." },
    { key: "buildNetwork", type: "string", computedDefault: "`host` with localRegistryPort (the builder pushes to this machine's loopback registry), else `bridge`", usedBy: "building stacks",
      description: "Network of the BuildKit builder container: `bridge` (its own network namespace) or `host` (the host's, which also reaches services on the host's loopback)." },
    { key: "npmrc", type: "string", secret: true, usedBy: "apps with private npm packages",
      description: "Content of an .npmrc passed to the build as a secret (never stored in a layer)." },
    { key: "promoteFrom", type: "string", usedBy: "prod",
      description: "Stack whose verified image this stack deploys: `staging`, `project/staging` or `org/project/staging` (short forms take this stack's organization and project, so the file works on a file backend and on Pulumi Cloud; never this stack itself, nor a dev stack). A promoting stack never builds." },
    // Services
    { key: "databaseUrl", type: "string", secret: true, usedBy: "stacks with an external Postgres",
      description: "External Postgres URL. When unset, a Postgres container with a protected volume is run." },
    { key: "postgresPassword", type: "string", secret: true, usedBy: "stacks without databaseUrl",
      description: "Password of the Postgres container's `medusa` user. Outside a local dev stack: at least 16 characters, not a placeholder." },
    { key: "postgresImage", type: "string", default: "postgres:16", usedBy: "all",
      description: "Postgres image, with a major version; with databaseUrl, the image whose pg_dump backs the external database up (the server's major version or newer). Outside a dev sandbox pinned by digest (`postgres:16@sha256:…`) unless named in allowMutableImages." },
    { key: "redisUrl", type: "string", secret: true, usedBy: "stacks with an external Redis",
      description: "External Redis URL. When unset, a Redis container with a protected volume is run." },
    { key: "redisImage", type: "string", default: "redis:7", usedBy: "stacks without redisUrl",
      description: "Redis image. Outside a dev sandbox pinned by digest unless named in allowMutableImages. The container gets a password (derived from cookieSecret, never on a command line)." },
    // Backups
    { key: "preMigrationBackup", type: "boolean", default: true, usedBy: "all",
      description: "Before a new release migrates the database, dump it (pg_dump custom format) into backupDir; a failed backup stops the deploy before the migration. A rollback does not undo a migration: this backup does." },
    { key: "backupDir", type: "string", computedDefault: "<hostStateDir>/backups", usedBy: "all",
      description: "Folder on the docker host for the database backups (0700, owned by the user host scripts run as). No deploy or destroy deletes it; only retention (backupKeepDeploy) removes old deploy backups." },
    { key: "backupKeepDeploy", type: "integer", default: 10, usedBy: "all",
      description: "Pre-migration backups kept per stack (1-1000): after each backup, older ones beyond this count are removed." },
    { key: "dailyBackup", type: "boolean", default: true, usedBy: "all",
      description: "Run the stack's daily backup container (the Postgres image's pg_dump, scheduled by Docker itself): a backup into backupDir every day at dailyBackupTime, and one at once when the newest is more than a day old." },
    { key: "dailyBackupTime", type: "string", default: "03:30", usedBy: "all",
      description: "When the daily backup is taken, HH:MM in UTC." },
    { key: "backupKeepDailyDays", type: "integer", default: 14, usedBy: "all",
      description: "Days the daily backups are kept (1-3650): each daily backup removes the ones older than this." },
    // The app
    { key: "jwtSecret", type: "string", secret: true, usedBy: "all",
      description: "Medusa JWT_SECRET. Outside a local dev stack: at least 32 random characters (`openssl rand -hex 32`), not a placeholder, not the dev default." },
    { key: "cookieSecret", type: "string", secret: true, usedBy: "all",
      description: "Medusa COOKIE_SECRET. Same rules as jwtSecret, and different from it." },
    { key: "storeCors", type: "string", computedDefault: "the public URL", usedBy: "all",
      description: "Medusa STORE_CORS: comma-separated origins (`https://shop.example.com`, no path or trailing slash) or `/regex/` entries." },
    { key: "adminCors", type: "string", computedDefault: "the public URL", usedBy: "all",
      description: "Medusa ADMIN_CORS, written like storeCors." },
    { key: "authCors", type: "string", computedDefault: "the public URL", usedBy: "all",
      description: "Medusa AUTH_CORS, written like storeCors." },
    { key: "appEnv", type: "object", usedBy: "all",
      description: "Extra plain environment for server and worker, e.g. `{\"LOG_LEVEL\": \"info\"}`. Names that look like secrets (…_SECRET, …_TOKEN, …_PASSWORD, …_API_KEY) belong in appSecretEnv." },
    { key: "appSecretEnv", type: "object", secret: true, usedBy: "all",
      description: "Extra secret environment for server and worker (the whole object is a secret)." },
    { key: "healthTimeoutSeconds", type: "integer", default: 300, usedBy: "all",
      description: "How long a new colour may take to become healthy (30-3600) before the deploy fails." },
    { key: "promotion", type: "string", default: "auto", usedBy: "all",
      description: "`auto`: traffic moves to a new release once it is healthy. `manual`: `pulumi up` stages it on the idle colour (migrated, gated, reachable with `npm run edge-preview`) and traffic moves with `npm run switch -- --stack <stack>`." },
    { key: "switchWatchSeconds", type: "integer", default: 30, usedBy: "all",
      description: "After a traffic switch, how long (0-3600 seconds) the edge's counters for the new colour are watched; 0 disables the watch." },
    { key: "switchWatchMaxErrorRate", type: "number", default: 0.05, usedBy: "all",
      description: "Share of failed responses (more than 0, at most 1; 0.05 = 5%) of the new colour during the watch that reverts the switch." },
    // The edge
    { key: "edgeAddress", type: "string", default: "127.0.0.1", usedBy: "all",
      description: "Host address the edge (HAProxy) publishes on. `127.0.0.1` behind an existing nginx, `0.0.0.0` to serve directly." },
    { key: "maintenancePageFile", type: "string", usedBy: "all",
      description: "An HTML file of the shop's (relative to the project folder, or absolute) that the edge answers with in maintenance mode (`npm run maintenance … page`, and a `hold` that ran out), with status 503 and `Retry-After`. At most 12 KiB: inline its CSS, link its images. Default: a plain built-in page." },
    { key: "edgePort", type: "integer", default: 8080, usedBy: "all",
      description: "Host port of the edge (1-65535). Must differ from the stack's other ports and from well-known host services (22, 25, 53, 2375-2377, 5432, 6379, …)." },
    { key: "edgeImage", type: "string", default: "haproxy:2.8", usedBy: "all",
      description: "HAProxy image of the edge (2.6 or newer). Outside a dev sandbox pinned by digest (`haproxy:2.8@sha256:…`) unless named in allowMutableImages." },
    { key: "edgeUser", type: "string", default: "70002:70002", usedBy: "all",
      description: "Numeric uid:gid the edge (HAProxy) runs as when host scripts run as root (sudo, or ssh as root). Without root the edge runs as the user the scripts run as. Same rules as appUser." },
    { key: "edgeClientConnections", type: "integer", default: 200, usedBy: "all",
      description: "Open connections one client address may hold at the edge (1-100000); more are refused at connect." },
    { key: "edgeClientRequestsPer10s", type: "integer", default: 5000, usedBy: "all",
      description: "Requests one client address may send in 10 seconds (1-10000000); more are answered 429. Raise it when many visitors share one address (a proxy in front without trustedProxies)." },
    { key: "allowMutableImages", type: "string", default: "", usedBy: "staging, prod",
      description: "Comma-separated image settings (edgeImage, postgresImage, redisImage) allowed to be a tag without a digest outside a dev sandbox, e.g. `edgeImage`. Empty: all three must be pinned as name:tag@sha256:<digest>." },
    { key: "publicUrl", type: "string", computedDefault: "http://<edgeAddress>:<edgePort>", usedBy: "all",
      description: "Origin the shop is reached at (stack output `url`, CORS default), e.g. `https://shop.example.com`. https outside dev stacks unless on loopback; required when the edge listens beyond loopback." },
    // Local development
    { key: "devDefaults", type: "boolean", default: false, usedBy: "dev",
      description: "Use fixed, published dev-only values for unset secrets. Only allowed on a local dev sandbox: a stack named `dev`, `dev-…` or `local`, with `host: local`, the edge on a loopback address and publicUrl (if set) on localhost." },
    { key: "localRegistryPort", type: "integer", usedBy: "dev",
      description: "Run a registry container on 127.0.0.1:<port> for pushes and the build cache; registry must then be `localhost:<port>/<name>`." },
];

export function findSetting(key: string): SettingSpec | undefined {
    return SETTINGS.find((s) => s.key === key);
}
