import { strict as assert } from "node:assert";
import {
    applyDaemonJsonEnv,
    desiredDaemonSettings,
    DOCKERD_RELOADABLE_KEYS,
    MANAGED_DAEMON_KEYS,
} from "../../lib/daemonJson";

const base = { buildkitKeepStorage: "20GB", logMaxSize: "10m", logMaxFile: 3, extra: {} };

describe("daemon.json settings (lib/daemonJson.ts)", () => {
    it("sets BuildKit with a bounded cache, live-restore and log rotation, and leaves the log driver alone", () => {
        assert.deepEqual(desiredDaemonSettings(base), {
            features: { buildkit: true },
            builder: { gc: { enabled: true, defaultKeepStorage: "20GB" } },
            "live-restore": true,
            "log-opts": { "max-size": "10m", "max-file": "3" },
        });
        assert.ok(!("log-driver" in desiredDaemonSettings(base)));
    });

    it("writes max-file as a string, as dockerd requires for every log option", () => {
        const logOpts = desiredDaemonSettings({ ...base, logMaxFile: 5 })["log-opts"] as Record<string, unknown>;
        assert.equal(logOpts["max-file"], "5");
    });

    it("adds extra keys next to the managed ones", () => {
        const settings = desiredDaemonSettings({ ...base, extra: { "registry-mirrors": ["https://m.example"], debug: true } });
        assert.deepEqual(settings["registry-mirrors"], ["https://m.example"]);
        assert.equal(settings.debug, true);
        assert.equal(settings["live-restore"], true);
    });

    for (const key of MANAGED_DAEMON_KEYS) {
        it(`refuses an extra "${key}" instead of silently overriding it`, () => {
            assert.throws(() => desiredDaemonSettings({ ...base, extra: { [key]: {} } }), new RegExp(`"${key}" would override`));
        });
    }

    it("rejects sizes and counts dockerd would refuse, before anything runs on a host", () => {
        assert.throws(() => desiredDaemonSettings({ ...base, buildkitKeepStorage: "lots" }), /size "lots" is not understood/);
        assert.throws(() => desiredDaemonSettings({ ...base, logMaxSize: "" }), /is not understood/);
        assert.throws(() => desiredDaemonSettings({ ...base, logMaxFile: 0 }), /logMaxFile/);
        assert.throws(() => desiredDaemonSettings({ ...base, logMaxFile: 2.5 }), /logMaxFile/);
    });

    it("lists live-restore as reloadable and keeps restart-only keys out of the reload list", () => {
        assert.ok(DOCKERD_RELOADABLE_KEYS.includes("live-restore"));
        assert.ok(DOCKERD_RELOADABLE_KEYS.includes("registry-mirrors"));
        for (const restartOnly of ["builder", "features", "log-opts", "log-driver", "data-root", "storage-driver"]) {
            assert.ok(!DOCKERD_RELOADABLE_KEYS.includes(restartOnly), restartOnly);
        }
    });

    it("hands the script its inputs as environment variables", () => {
        const desired = desiredDaemonSettings(base);
        const env = applyDaemonJsonEnv(desired);
        assert.deepEqual(JSON.parse(env.DAEMON_JSON_DESIRED), desired);
        assert.deepEqual(env.DAEMON_RELOADABLE_KEYS.split(" "), [...DOCKERD_RELOADABLE_KEYS]);
    });
});
